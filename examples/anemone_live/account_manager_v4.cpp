// AccountManager v4 as a module: version 2 of its interface (Deactivate), for release anemone 4.
#include <hotswap/modules.hpp>

#include "../anemone/servers.hpp"

HOTSWAP_MODULE("anemone.account_manager", anemone::AccountManagerV4);
