// AccountManager v2 as a module: a shared library the code server loads (see main.cpp).
#include <hotswap/modules.hpp>

#include "../anemone/servers.hpp"

HOTSWAP_MODULE("anemone.account_manager", anemone::AccountManagerV2);
