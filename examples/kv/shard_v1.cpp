// A kv shard's code, kv 1's store, as a module: release kv 1's (main.cpp loads it).
#include <hotswap/modules.hpp>

#include "service.hpp"

HOTSWAP_MODULE("kv.shard", kv::ShardV1);
