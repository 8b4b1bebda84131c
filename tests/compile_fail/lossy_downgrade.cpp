// A downgrade that would lose a field without saying so.
// expect: field_dropped_without_declaration
// expect: for a downgrade, that declares the loss
// expect: <'a', 'c', 't', 'i', 'v', 'e'>
#include <optional>
#include <string>
#include <hotswap/hotswap.hpp>

namespace v2 { struct Account { std::optional<std::string> name; int score = 0; int stage = 0; }; }
namespace v3 { struct Account { std::optional<std::string> name; int score = 0; int stage = 0; bool active = true; }; }
using AccountSchema = hotswap::schema<"Account", hotswap::version<2, v2::Account>, hotswap::version<3, v3::Account>>;
template <hotswap::listed_in<AccountSchema> T> struct hotswap::schema_of<T> : AccountSchema {};
#ifdef HOTSWAP_FIXED
template <> struct hotswap::step<v3::Account, v2::Account> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"active">};
};
#endif

int main() { return hotswap::migrate<v2::Account>(v3::Account{}).score; }
