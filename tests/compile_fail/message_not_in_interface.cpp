// Sending a message the server's interface does not declare.
// expect: message_is_not_in_the_interface<hotswap::errors::interface_named<'C', 'o', 'u', 'n', 't', 'e', 'r'>, Reset>
// expect: add hotswap::call_msg<Message, Reply>, cast_msg<Message> or info_msg<Message> to the interface
#include <hotswap/hotswap.hpp>

struct Add { int n; };
struct Reset {};
#ifndef HOTSWAP_FIXED
using CounterInterface = hotswap::interface<"Counter", hotswap::cast_msg<Add>>;
#else
using CounterInterface = hotswap::interface<"Counter", hotswap::cast_msg<Add>, hotswap::cast_msg<Reset>>;
#endif

void reset(const hotswap::server_ref<CounterInterface>& counter) { hotswap::cast(counter, Reset{}); }

int main() {}
