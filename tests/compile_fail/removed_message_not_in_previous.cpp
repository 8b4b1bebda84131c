// A later version of an interface removes a message the version before does not take.
// expect: hotswap::removed_msg<M> names a message the previous interface takes
#include <hotswap/hotswap.hpp>

struct Get {};
struct Put {};
using V1 = hotswap::interface<"Store", hotswap::call_msg<Get, int>, hotswap::cast_msg<Put>>;
#ifndef HOTSWAP_FIXED
using V2 = hotswap::interface<"Store", hotswap::follows<V1>, hotswap::removed_msg<int>>;
#else
using V2 = hotswap::interface<"Store", hotswap::follows<V1>, hotswap::removed_msg<Put>>;
#endif

int main() { return static_cast<int>(V2::size); }
