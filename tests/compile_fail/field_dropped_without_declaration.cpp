// A field the older version has and the newer lacks, not declared removed.
// expect: field_dropped_without_declaration
// expect: declare hotswap::removed<
// expect: <'l', 'e', 'g', 'a', 'c', 'y'>
#include <hotswap/hotswap.hpp>

namespace v1 { struct Point { int x = 0; int legacy = 0; }; }
namespace v2 { struct Point { int x = 0; }; }
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v2::Point>>;
template <hotswap::listed_in<PointSchema> T> struct hotswap::schema_of<T> : PointSchema {};
#ifdef HOTSWAP_FIXED
template <> struct hotswap::step<v1::Point, v2::Point> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"legacy">};
};
#endif

int main() { return hotswap::migrate<v2::Point>(v1::Point{}).x; }
