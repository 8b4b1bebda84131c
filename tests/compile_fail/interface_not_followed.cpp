// Two interfaces of one name, the second not declared a later version of the first: a client
// built against the first could not call a server of the second.
// expect: New is not a later version of Old: list hotswap::follows<Old> first in New's messages
// expect: Get
#include <hotswap/hotswap.hpp>

struct Get {};
struct Put {};
using V1 = hotswap::interface<"Store", hotswap::call_msg<Get, int>, hotswap::cast_msg<Put>>;
#ifndef HOTSWAP_FIXED
using V2 = hotswap::interface<"Store", hotswap::call_msg<Get, long>, hotswap::cast_msg<Put>>;
#else
using V2 = hotswap::interface<"Store", hotswap::follows<V1>, hotswap::call_msg<Get, int>, hotswap::cast_msg<Put>>;
#endif
static_assert(hotswap::compatible<V1, V2>);

int main() {}
