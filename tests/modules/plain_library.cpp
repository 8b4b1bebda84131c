// A shared library that is not a module: it has no HOTSWAP_MODULE.
extern "C" int plain_library_answer() {
  return 42;
}
