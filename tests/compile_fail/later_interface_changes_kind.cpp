// A later version of an interface takes a message of the version before as another kind.
// expect: a later interface takes a message of its previous version as the same kind
#include <hotswap/hotswap.hpp>

struct Get {};
using V1 = hotswap::interface<"Store", hotswap::call_msg<Get, int>>;
#ifndef HOTSWAP_FIXED
using V2 = hotswap::interface<"Store", hotswap::follows<V1>, hotswap::cast_msg<Get>>;
#else
using V2 = hotswap::interface<"Store", hotswap::follows<V1>, hotswap::call_msg<Get, int>>;
#endif

int main() { return static_cast<int>(V2::size); }
