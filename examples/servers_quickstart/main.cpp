// examples/servers_quickstart/main.cpp: a counter whose code and state change while it runs.
#include <fmt/format.h>

#include "counter.hpp"

int main() {
  auto counter = hotswap::start<CounterV1>({.name = "counter"}).value();
  hotswap::cast(counter, Add{4});

  hotswap::sys::suspend(counter).value();                                       // casts and calls now wait, in order
  hotswap::sys::change_code(counter, hotswap::table_of<CounterV2>, 1).value();  // v1::Count -> v2::Count
  hotswap::sys::resume(counter).value();

  long n = hotswap::call(counter, Get{}).value();  // 40: v2's code on v1's count
  fmt::print("{} (running {})\n", n, hotswap::sys::get_status(counter).value().implementation);
  hotswap::stop(counter).value();
}
