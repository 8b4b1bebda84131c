// A later version of an interface takes a message as a later version of its schema that the
// earlier one's does not migrate to (a field added without a declaration).
// expect: a message of an earlier interface must migrate up to the later one's
#include <string>

#include <hotswap/hotswap.hpp>

namespace v1 {
struct Put {
  std::string key;
};
}  // namespace v1
namespace v2 {
struct Put {
  std::string key;
  int ttl = 0;
};
}  // namespace v2
using PutSchema = hotswap::schema<"Put", hotswap::version<1, v1::Put>, hotswap::version<2, v2::Put>>;
template <hotswap::listed_in<PutSchema> T>
struct hotswap::schema_of<T> : PutSchema {};
#ifdef HOTSWAP_FIXED
template <>
struct hotswap::step<v1::Put, v2::Put> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"ttl">};
};
#endif

using V1 = hotswap::interface<"Store", hotswap::cast_msg<v1::Put>>;
using V2 = hotswap::interface<"Store", hotswap::follows<V1>, hotswap::cast_msg<v2::Put>>;

int main() { return static_cast<int>(V2::size); }
