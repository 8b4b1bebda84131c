// A version with more fields than hotswap binds.
// expect: version_has_too_many_fields
// expect: group fields into nested structs
// expect: 129
#include <hotswap/hotswap.hpp>

#define HOTSWAP_TEST_8(p) int p##0, p##1, p##2, p##3, p##4, p##5, p##6, p##7;
#define HOTSWAP_TEST_64(p) HOTSWAP_TEST_8(p##0) HOTSWAP_TEST_8(p##1) HOTSWAP_TEST_8(p##2) HOTSWAP_TEST_8(p##3) \
  HOTSWAP_TEST_8(p##4) HOTSWAP_TEST_8(p##5) HOTSWAP_TEST_8(p##6) HOTSWAP_TEST_8(p##7)
namespace v1 {
struct Wide {
  HOTSWAP_TEST_64(a)
  HOTSWAP_TEST_64(b)
#ifndef HOTSWAP_FIXED
  int one_too_many;
#endif
};
}
using WideSchema = hotswap::schema<"Wide", hotswap::version<1, v1::Wide>>;
template <hotswap::listed_in<WideSchema> T> struct hotswap::schema_of<T> : WideSchema {};

int main() { return hotswap::vsn_of<v1::Wide>; }
