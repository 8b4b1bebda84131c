// An added scalar field with no default member initializer and no init rule.
// expect: added_field_has_no_default
// expect: give it one
// expect: <'P', 'o', 'i', 'n', 't'>
// expect: <'y'>
#include <hotswap/hotswap.hpp>

namespace v1 { struct Point { int x = 0; }; }
#ifndef HOTSWAP_FIXED
namespace v2 { struct Point { int x = 0; int y; }; }
#else
namespace v2 { struct Point { int x = 0; int y = 0; }; }
#endif
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v2::Point>>;
template <hotswap::listed_in<PointSchema> T> struct hotswap::schema_of<T> : PointSchema {};

int main() { return hotswap::migrate<v2::Point>(v1::Point{}).x; }
