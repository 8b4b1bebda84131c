// hotswap: Erlang/OTP-style hot code upgrades for C++20. Include this, or only the headers you use.
#pragma once

#include "inspect.hpp"
#include "migrations.hpp"
#include "modules.hpp"
#include "result.hpp"
#include "schemas.hpp"
#include "servers.hpp"
#include "supervisors.hpp"
#include "sys.hpp"
#include "version.hpp"
