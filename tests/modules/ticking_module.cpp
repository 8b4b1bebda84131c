// ticking::Ticking as a module.
#include <hotswap/modules.hpp>

#include "ticking.hpp"

HOTSWAP_MODULE("ticking", ticking::Ticking);
