// A version with more fields than hotswap binds.
// expect: version_has_too_many_fields
// expect: group fields into nested structs
// expect: 65
#include <hotswap/hotswap.hpp>

#define HOTSWAP_TEST_8(p) int p##0, p##1, p##2, p##3, p##4, p##5, p##6, p##7;
namespace v1 {
struct Wide {
  HOTSWAP_TEST_8(a) HOTSWAP_TEST_8(b) HOTSWAP_TEST_8(c) HOTSWAP_TEST_8(d)
  HOTSWAP_TEST_8(e) HOTSWAP_TEST_8(f) HOTSWAP_TEST_8(g) HOTSWAP_TEST_8(h)
#ifndef HOTSWAP_FIXED
  int one_too_many;
#endif
};
}
using WideSchema = hotswap::schema<"Wide", hotswap::version<1, v1::Wide>>;
template <hotswap::listed_in<WideSchema> T> struct hotswap::schema_of<T> : WideSchema {};

int main() { return hotswap::vsn_of<v1::Wide>; }
