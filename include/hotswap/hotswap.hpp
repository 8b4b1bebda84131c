// hotswap: Erlang/OTP-style hot code upgrades for C++20. Include this, or only the headers you use.
#pragma once

#include "version.hpp"
#include "result.hpp"
#include "schemas.hpp"
#include "migrations.hpp"
#include "inspect.hpp"
#include "servers.hpp"
#include "sys.hpp"
#include "supervisors.hpp"
#include "modules.hpp"
