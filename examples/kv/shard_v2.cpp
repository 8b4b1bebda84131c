// A kv shard's code, kv 2's store, as a module: release kv 2's (main.cpp loads it).
#include <hotswap/modules.hpp>

#include "service.hpp"

HOTSWAP_MODULE("kv.shard", kv::ShardV2);
