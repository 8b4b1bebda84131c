// A version with a constructor, migrated: the schema's error, and nothing after it (no error for
// the fields the step would then seem to drop).
// expect: version_is_not_an_aggregate
// expect: remove the constructors
// expect: <'P', 'o', 'i', 'n', 't'>, 2, v2::Point>
#include <hotswap/hotswap.hpp>

namespace v1 { struct Point { int x = 0; int y = 0; }; }
namespace v2 {
struct Point {
#ifndef HOTSWAP_FIXED
  Point() = default;
  Point(int x_, int y_) : x(x_), y(y_) {}
#endif
  int x = 0;
  int y = 0;
  int z = 0;
};
}  // namespace v2
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v2::Point>>;
template <hotswap::listed_in<PointSchema> T> struct hotswap::schema_of<T> : PointSchema {};

int main() { return hotswap::migrate<v2::Point>(v1::Point{1, 2}).y; }
