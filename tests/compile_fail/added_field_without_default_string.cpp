// An added number in a struct that holds a std::string: hotswap cannot read its default member initializer
// at compile time (no compiler builds every such struct in a constant expression), so the step
// declares how the field is made; the same error on g++ and clang.
// expect: added_field_must_be_declared<
// expect: <'A', 'c', 'c', 'o', 'u', 'n', 't'>, 1, 2, hotswap::errors::field_named<'a', 'c', 't', 'i', 'v', 'e'>, hotswap::errors::field_named<'n', 'a', 'm', 'e'>
// expect: must be declared: declare hotswap::added<
#include <string>

#include <hotswap/hotswap.hpp>

namespace v1 { struct Account { std::string name; int score = 0; }; }
namespace v2 { struct Account { std::string name; int score = 0; bool active; }; }
using AccountSchema = hotswap::schema<"Account", hotswap::version<1, v1::Account>, hotswap::version<2, v2::Account>>;
template <hotswap::listed_in<AccountSchema> T> struct hotswap::schema_of<T> : AccountSchema {};
#ifdef HOTSWAP_FIXED
template <> struct hotswap::step<v1::Account, v2::Account> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"active">};
};
#endif

int main() { return hotswap::migrate<v2::Account>(v1::Account{}).score; }
