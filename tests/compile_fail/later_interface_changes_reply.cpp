// A later version of an interface answers a call with an unrelated type: the callers built
// against the earlier one could not be answered.
// expect: a call's reply may change, in a later interface, only to a later version of its schema
#include <hotswap/hotswap.hpp>

struct Get {};
using V1 = hotswap::interface<"Store", hotswap::call_msg<Get, int>>;
#ifndef HOTSWAP_FIXED
using V2 = hotswap::interface<"Store", hotswap::follows<V1>, hotswap::call_msg<Get, long>>;
#else
using V2 = hotswap::interface<"Store", hotswap::follows<V1>, hotswap::call_msg<Get, int>>;
#endif

int main() { return static_cast<int>(V2::size); }
