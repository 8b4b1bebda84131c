// examples/modules_quickstart/counter_v2.cpp: CounterV2 as a module, built with
// hotswap_add_module(counter_v2 counter_v2.cpp) in CMake.
#include "../servers_quickstart/counter.hpp"

HOTSWAP_MODULE("counter", CounterV2);
