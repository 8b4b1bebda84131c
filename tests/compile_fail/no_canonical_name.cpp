// A field type hotswap cannot name in a fingerprint.
// expect: type_has_no_canonical_name
// expect: specialize hotswap::type_name<T>
#include <string_view>
#include <hotswap/hotswap.hpp>

struct Opaque { int bits = 0; };
#ifdef HOTSWAP_FIXED
template <> struct hotswap::type_name<Opaque> { static constexpr std::string_view value = "Opaque"; };
#endif
namespace v1 { struct Holder { Opaque inside; }; }
using HolderSchema = hotswap::schema<"Holder", hotswap::version<1, v1::Holder>>;
template <hotswap::listed_in<HolderSchema> T> struct hotswap::schema_of<T> : HolderSchema {};

int main() { return hotswap::fingerprint<v1::Holder> == 0; }
