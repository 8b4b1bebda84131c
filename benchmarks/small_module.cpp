// The small module modules_benchmark loads, in the vsn SMALL_MODULE_VSN says.
#include "small_module.hpp"

#include <hotswap/modules.hpp>

HOTSWAP_MODULE("bench.counter", bench::SmallCounter<SMALL_MODULE_VSN>);
