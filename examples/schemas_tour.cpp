// A tour of what a schema declaration gives: field names, per-step diffs, fingerprints, the
// run-time registry, nested migrations and a downgrade.
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "anemone/account.hpp"

namespace game {
namespace v1 {
struct Team {
  std::string title;
  std::vector<anemone::v2::Account> members;
};
}  // namespace v1
namespace v2 {
struct Team {
  std::string title;
  std::vector<anemone::v3::Account> members;  // the nested schema migrates with its container
  std::optional<std::string> motto;           // added: an empty optional by default
};
}  // namespace v2
using TeamSchema = hotswap::schema<"Team", hotswap::version<1, v1::Team>, hotswap::version<2, v2::Team>>;
}  // namespace game

template <hotswap::listed_in<game::TeamSchema> T>
struct hotswap::schema_of<T> : game::TeamSchema {};
template <>
inline constexpr bool hotswap::enable_inspect<game::TeamSchema> = true;

int main() {
  using namespace anemone;
  fmt::print("v3 fields: {}\n", hotswap::field_names<v3::Account>);
  fmt::print("v2 -> v3 adds {}, keeps {}\n", hotswap::field_diff<v2::Account, v3::Account>::added,
             hotswap::field_diff<v2::Account, v3::Account>::kept);
  fmt::print("{} = {:016x}\n", hotswap::type_description<v3::Account>, hotswap::fingerprint<v3::Account>);

  hotswap::registry().add<AccountSchema>();
  for (const auto& version : hotswap::registry().versions("Account"))
    fmt::print("registry: {} v{} {:016x} {}\n", version.schema, version.vsn, version.fingerprint, version.field_names);

  game::v1::Team team{"anemones", {{"Alice", 3, 0}, {"Bob", 6, 1}}};
  auto upgraded = hotswap::migrate<game::v2::Team>(std::move(team));
  fmt::print("{}\n", upgraded);

  auto downgraded = hotswap::migrate<v2::Account>(upgraded.members.at(1));
  fmt::print("downgraded: {}\n", downgraded);
}
