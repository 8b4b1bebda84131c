// examples/modules_quickstart/main.cpp: the counter's two versions loaded from shared libraries
// (built beside this program, into modules/), one swapped for the other while the server runs.
// Run it from the directory that holds modules/.
#include <fmt/format.h>

#include "../servers_quickstart/counter.hpp"

int main() {
  hotswap::registry().add<CountSchema>();  // the schema versions this program was built with

  hotswap::code_server code;  // copies go to a new private directory under $TMPDIR or /tmp
  auto v1 = code.load<Counter>("modules/counter_v1.so").value();
  auto counter = hotswap::start<Counter>(v1).value();
  hotswap::cast(counter, Add{4});
  // ... a new build arrives:
  auto v2 = code.load<Counter>("modules/counter_v2.so").value();  // checked, then current; v1 is old
  hotswap::sys::suspend(counter).value();
  hotswap::sys::change_code(counter, v2, 1).value();  // or (counter, v2, 1, extra)
  hotswap::sys::resume(counter).value();
  v1.reset();
  auto purged = code.purge("counter").value();  // v1 unmapped: nothing runs it

  fmt::print("{} (running {} vsn {}); vsn {} {}\n", hotswap::call(counter, Get{}).value(), v2->implementation(),
             v2->vsn(), purged.vsn, purged.unmapped ? "unmapped" : "still mapped");
  hotswap::stop(counter).value();
}
