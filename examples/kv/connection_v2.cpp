// A kv connection's code, kv 2's commands, as a module: release kv 2's (main.cpp loads it).
#include <hotswap/modules.hpp>

#include "service.hpp"

HOTSWAP_MODULE("kv.connection", kv::ConnectionV2);
