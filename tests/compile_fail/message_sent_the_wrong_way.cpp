// Casting a message the interface declares as a call.
// expect: message_sent_the_wrong_way<hotswap::errors::interface_named<'C', 'o', 'u', 'n', 't', 'e', 'r'>, Get, hotswap::call_msg<Get, int>
// expect: send a call_msg with hotswap::call
#include <hotswap/hotswap.hpp>

struct Get {};
using CounterInterface = hotswap::interface<"Counter", hotswap::call_msg<Get, int>>;

#ifndef HOTSWAP_FIXED
void ask(const hotswap::server_ref<CounterInterface>& counter) { hotswap::cast(counter, Get{}); }
#else
void ask(const hotswap::server_ref<CounterInterface>& counter) { (void)hotswap::call(counter, Get{}); }
#endif

int main() {}
