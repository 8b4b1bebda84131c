// A version with a reference member.
// expect: version_has_a_reference_or_const_member
// expect: store the value itself
#include <hotswap/hotswap.hpp>

inline int global = 0;
namespace v1 {
#ifndef HOTSWAP_FIXED
struct Point { int& x = global; };
#else
struct Point { int x = global; };
#endif
}
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>>;

int main() { return static_cast<int>(PointSchema::name.size()); }
