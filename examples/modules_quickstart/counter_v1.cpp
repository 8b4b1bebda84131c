// CounterV1 of the README as a module.
#include "../servers_quickstart/counter.hpp"

HOTSWAP_MODULE("counter", CounterV1);
