// A rule that names a field neither version has.
// expect: rule_names_an_unknown_field
// expect: names a field that does not exist
// expect: <'c', 'o', 'l', 'o', 'u', 'r'>
#include <hotswap/hotswap.hpp>

namespace v1 { struct Point { int x = 0; int color = 0; }; }
namespace v2 { struct Point { int x = 0; }; }
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v2::Point>>;
template <hotswap::listed_in<PointSchema> T> struct hotswap::schema_of<T> : PointSchema {};
template <> struct hotswap::step<v1::Point, v2::Point> {
#ifndef HOTSWAP_FIXED
  static constexpr auto rules = hotswap::rules{hotswap::removed<"colour">};
#else
  static constexpr auto rules = hotswap::rules{hotswap::removed<"color">};
#endif
};

int main() { return hotswap::migrate<v2::Point>(v1::Point{}).x; }
