// A kv connection's code, kv 1's commands, as a module: release kv 1's (main.cpp loads it).
#include <hotswap/modules.hpp>

#include "service.hpp"

HOTSWAP_MODULE("kv.connection", kv::ConnectionV1);
