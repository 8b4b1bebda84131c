// examples/modules_quickstart/counter_v1.cpp: CounterV1 as a module, built with
// hotswap_add_module(counter_v1 counter_v1.cpp) in CMake.
#include "../servers_quickstart/counter.hpp"

HOTSWAP_MODULE("counter", CounterV1);
