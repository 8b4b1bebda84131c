// CounterV2 of the README as a module.
// counter_v2.cpp, built with hotswap_add_module(counter_v2 counter_v2.cpp) in CMake
#include "../servers_quickstart/counter.hpp"

HOTSWAP_MODULE("counter", CounterV2);
