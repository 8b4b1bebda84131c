// AccountManager v3 as a faulty build would ship it: its tick throws. Installed from outside in
// release anemone 3-faulty, it shows the grace period (docs/operations.md): the server goes back
// to v2 with its accounts, and the release rolls back to anemone 2 by itself.
#include <stdexcept>

#include <hotswap/modules.hpp>

#include "../anemone/servers.hpp"

namespace anemone {
struct FaultyAccountManagerV3 : AccountManagerV3 {
  static void handle_info(const Tick&, state&) { throw std::runtime_error("a fault in the v3 build's tick"); }
};
}  // namespace anemone

HOTSWAP_MODULE("anemone.account_manager", anemone::FaultyAccountManagerV3);
