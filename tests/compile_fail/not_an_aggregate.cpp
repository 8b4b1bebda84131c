// A version with a constructor.
// expect: version_is_not_an_aggregate
// expect: remove the constructors
// expect: <'P', 'o', 'i', 'n', 't'>
#include <hotswap/hotswap.hpp>

namespace v1 {
#ifndef HOTSWAP_FIXED
struct Point { Point() = default; explicit Point(int v) : x(v) {} int x = 0; };
#else
struct Point { int x = 0; };
#endif
}
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>>;

int main() { return static_cast<int>(PointSchema::name.size()); }
