// The least a module can be: one implementation and hotswap, nothing of the tests' own (whose
// statics register destructors at exit). What is left to see is what hotswap's code does: it
// must register no exit handler (glibc keeps a record of one after every unload).
#include <hotswap/modules.hpp>

#include "minimal.hpp"

#ifndef MINIMAL_INIT
#define MINIMAL_INIT 1  // another value: another build of the same module (the torn-file test)
#endif

struct MinimalV1 {
  using interface = Minimal;
  static constexpr int vsn = 1;
  using state = int;
  static state init() { return MINIMAL_INIT; }
  static int handle_call(const Ping&, const state& s) { return s; }
};

HOTSWAP_MODULE("minimal", MinimalV1);
