// Version numbers with a gap.
// expect: version_numbers_must_count_up_by_one
// expect: renumber them
// expect: <'P', 'o', 'i', 'n', 't'>
// expect: 1, 3
#include <hotswap/hotswap.hpp>

namespace v1 { struct Point { int x = 0; }; }
namespace v3 { struct Point { int x = 0; int y = 0; }; }
#ifndef HOTSWAP_FIXED
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<3, v3::Point>>;
#else
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v3::Point>>;
#endif

int main() { return static_cast<int>(PointSchema::name.size()); }
