// The interface of the minimal test module, shared by the module and the tests that load it.
#pragma once

#include <hotswap/servers.hpp>

struct Ping {};
using Minimal = hotswap::interface<"Minimal", hotswap::call_msg<Ping, int>>;
