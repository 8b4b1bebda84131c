// The program's end with a module's server running: the runtime, destroyed after main, stops it
// while its code is still loaded (its lease holds the library, after the code server has gone),
// and its terminate runs. Seen from outside: this test program run again, as a subprocess, for a
// hidden test that leaves its servers running.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

#include <hotswap/modules.hpp>

#include "../runtime/servers.hpp"
#include "files.hpp"

namespace {

/// The program's own counter, whose terminate prints its line.
struct SayingCounter : testing::CounterV1 {
  static void terminate(const hotswap::exit_reason& reason, state& s) {
    std::printf("program counter %d terminate: %s\n", s.count, testing::describe(reason).c_str());
    std::fflush(stdout);
  }
};

/// This test program's path (/proc/self/exe would name the shell popen runs).
std::string this_program() {
  std::array<char, 4096> path{};
  const ssize_t length = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  REQUIRE(length > 0);
  return std::string(path.data(), static_cast<std::size_t>(length));
}

}  // namespace

TEST_CASE("left running at exit: a program's server and a module's", "[.][left_running_at_exit]") {
  testing::scratch files;
  hotswap::code_server code;  // gone before the runtime: the server's lease keeps the module loaded
  auto program_counter = hotswap::start<SayingCounter>().value();
  hotswap::cast(program_counter, testing::Add{1});
  const auto module = code.load<testing::Counter>(files.stage("counter_v1_says", "counter.so")).value();
  auto module_counter = hotswap::start<testing::Counter>(module).value();
  hotswap::cast(module_counter, testing::Add{2});
  CHECK(hotswap::call(module_counter, testing::Get{}).value() == 2);
  CHECK(hotswap::call(program_counter, testing::Get{}).value() == 1);
  std::printf("main returns\n");
  std::fflush(stdout);
}

TEST_CASE("servers still running when the runtime is destroyed are stopped, a module's while its code is loaded") {
  FILE* child = ::popen(("'" + this_program() + "' '[left_running_at_exit]' 2>&1").c_str(), "r");
  REQUIRE(child);
  std::string output;
  std::array<char, 4096> chunk{};
  while (const std::size_t got = std::fread(chunk.data(), 1, chunk.size(), child)) output.append(chunk.data(), got);
  const int status = ::pclose(child);
  INFO(output);
  CHECK(status == 0);
  // After main, newest first: each terminate ran, with reason shutdown.
  const auto returned = output.find("main returns\n");
  const auto module_line = output.find("module counter 2 terminate: shutdown: the program is stopping\n");
  const auto program_line = output.find("program counter 1 terminate: shutdown: the program is stopping\n");
  REQUIRE(returned != std::string::npos);
  REQUIRE(module_line != std::string::npos);
  REQUIRE(program_line != std::string::npos);
  CHECK(returned < module_line);
  CHECK(module_line < program_line);
}
