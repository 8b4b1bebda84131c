// Module files for the tests: where the build put them, and a private directory to stage
// copies in (the build tree's permissions are not the tests' business).
#pragma once

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <catch2/catch.hpp>

namespace testing {

inline std::string built(const std::string& name) {
  return std::string(HOTSWAP_TEST_MODULE_DIR) + "/" + name + ".so";
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

/// A private directory (mode 0700) the test puts module files in: the build tree's permissions
/// are not the test's business.
struct scratch {
  std::string dir;
  scratch() {
    std::string pattern = "/tmp/hotswap-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()));
    dir = pattern;
  }
  ~scratch() { (void)std::system(("rm -rf " + dir).c_str()); }
  /// The bytes of built module `name` as `file` here.
  std::string stage(const std::string& name, const std::string& file) const {
    const std::string path = dir + "/" + file;
    write_bytes(path, read_bytes(built(name)));
    return path;
  }
};

}  // namespace testing
