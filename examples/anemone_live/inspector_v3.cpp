// Inspector v3 as a module: a shared library the code server loads (see main.cpp).
#include <hotswap/modules.hpp>

#include "../anemone/servers.hpp"

HOTSWAP_MODULE("anemone.inspector", anemone::InspectorV3);
