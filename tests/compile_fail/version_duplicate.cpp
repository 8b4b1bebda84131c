// The same version number twice.
// expect: version_numbers_must_count_up_by_one
// expect: without a gap or a duplicate
// expect: 2, 2
#include <hotswap/hotswap.hpp>

namespace v1 { struct Point { int x = 0; }; }
namespace v2 { struct Point { int x = 0; int y = 0; }; }
namespace v3 { struct Point { int x = 0; int y = 0; int z = 0; }; }
#ifndef HOTSWAP_FIXED
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v2::Point>,
                                    hotswap::version<2, v3::Point>>;
#else
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v2::Point>,
                                    hotswap::version<3, v3::Point>>;
#endif

int main() { return static_cast<int>(PointSchema::name.size()); }
