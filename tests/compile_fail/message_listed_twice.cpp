// An interface that lists a message twice. The interface is named as written, letter by letter,
// by both compilers (not clang's character codes).
// expect: message_listed_twice<hotswap::errors::interface_named<'C', 'o', 'u', 'n', 't', 'e', 'r'>, Add>
// expect: an interface lists each message type once
#include <hotswap/hotswap.hpp>

struct Add { int n; };
#ifndef HOTSWAP_FIXED
using CounterInterface = hotswap::interface<"Counter", hotswap::cast_msg<Add>, hotswap::cast_msg<Add>>;
#else
using CounterInterface = hotswap::interface<"Counter", hotswap::cast_msg<Add>>;
#endif

int main() { return static_cast<int>(CounterInterface::size); }
