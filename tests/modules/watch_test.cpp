// The development loop: another build of the same vsn taken by a development code server, a
// rebuild's state handed on or migrated, a failing one refused, the build on probation rolled
// back when a handler throws, and module files reloaded as their build writes them.
#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <hotswap/watch.hpp>

#include "../runtime/servers.hpp"
#include "files.hpp"
#include "minimal.hpp"

using testing::Add;
using testing::built;
using testing::Counter;
using testing::Crash;
using testing::eventually;
using testing::Get;
using testing::read_bytes;
using testing::scratch;
using testing::write_bytes;

namespace {

/// What a watch printed, for the test to wait on.
struct printed {
  std::mutex lock;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) {
      const std::lock_guard hold(lock);
      lines.push_back(line);
    };
  }
  std::vector<std::string> take() {
    const std::lock_guard hold(lock);
    return lines;
  }
  bool has(const std::string& part) {
    const std::lock_guard hold(lock);
    for (const auto& line : lines)
      if (line.find(part) != std::string::npos) return true;
    return false;
  }
};

struct development {
  development() { hotswap::registry().add<testing::CountSchema>(); }
  scratch files;
  hotswap::code_server code{{.directory = files.dir + "/copies", .development = true}};
  printed said;
};

std::uint64_t state_fingerprint(const hotswap::any_server& server) {
  return hotswap::sys::get_status(server).value().state_fingerprint;
}

}  // namespace

TEST_CASE("a development code server takes another build of the current vsn; production keeps to newer vsns") {
  scratch files;
  SECTION("production") {
    hotswap::code_server code({.directory = files.dir + "/copies"});
    const auto first = code.load<Minimal>(files.stage("minimal", "minimal.so")).value();
    const auto other = code.load<Minimal>(files.stage("minimal_other_build", "other.so"));
    REQUIRE_FALSE(other);
    CHECK(other.error().code == hotswap::errc::not_newer);
    CHECK_THAT(other.error().what, Catch::Contains("minimal vsn 1 is not newer than the current vsn 1 (another build "
                                                   "of it: a code server in development mode takes that)"));
    CHECK(code.current("minimal") == first);
  }
  SECTION("development") {
    hotswap::code_server code({.directory = files.dir + "/copies", .development = true});
    CHECK(code.development());
    const auto first = code.load<Minimal>(files.stage("minimal", "minimal.so")).value();
    auto server = hotswap::start<Minimal>(first).value();
    CHECK(hotswap::call(server, Ping{}).value() == 1);
    const std::string build = code.check(files.stage("minimal_other_build", "other.so")).value().build;
    const auto other = code.load<Minimal>(files.dir + "/other.so").value();
    CHECK(other->build() == build);
    CHECK(other->vsn() == first->vsn());
    CHECK(other->build().size() == 16);
    CHECK(other->build() != first->build());
    // The same build again is refused: nothing would change.
    const auto again = code.load<Minimal>(files.dir + "/other.so");
    REQUIRE_FALSE(again);
    CHECK(again.error().code == hotswap::errc::not_newer);
    CHECK_THAT(again.error().what,
               Catch::Contains("minimal vsn 1 build " + other->build() + " is the build loaded already"));
    hotswap::sys::suspend(server).value();
    hotswap::sys::change_code(server, other, 1).value();
    hotswap::sys::resume(server).value();
    CHECK(hotswap::call(server, Ping{}).value() == 1);  // its state, handed on
    auto started = hotswap::start<Minimal>(other).value();
    CHECK(hotswap::call(started, Ping{}).value() == 2);  // that build's init
    hotswap::stop(server).value();
    hotswap::stop(started).value();
  }
}

TEST_CASE("a reload hands a rebuild's state on when its type is the same, and the servers run the new build") {
  development dev;
  const auto v2 = dev.code.load<Counter>(dev.files.stage("counter_v2", "counter.so")).value();
  auto one = hotswap::start<Counter>(v2).value();
  auto two = hotswap::start<Counter>(v2).value();
  hotswap::cast(one, Add{4});
  hotswap::cast(two, Add{5});
  const std::string before = v2->build();
  hotswap::module_watch watch(dev.code, {.print = dev.said.sink()});
  write_bytes(dev.files.dir + "/counter.so", read_bytes(built("counter_v2_rebuilt")));
  const hotswap::reload_report report = watch.reload(dev.files.dir + "/counter.so");
  INFO(to_string(report));
  REQUIRE(report);
  CHECK(report.module == "counter");
  CHECK(report.from_vsn == 2);
  CHECK(report.to_vsn == 2);
  CHECK(report.from_build == before);
  CHECK(report.to_build == dev.code.current("counter")->build());
  CHECK(report.to_build != before);
  CHECK(report.servers.size() == 2);
  CHECK(report.pause.count() > 0);
  CHECK_THAT(to_string(report), Catch::StartsWith("reloaded counter vsn 2 (build " + before.substr(0, 8) + " -> " +
                                                  report.to_build.substr(0, 8) + "): 2 servers upgraded in "));
  CHECK(hotswap::call(one, Get{}).value() == 40);  // the new build's code, the state handed on
  CHECK(hotswap::call(two, Get{}).value() == 50);
  // The build before is kept while the new one is on probation, and purged at the next reload.
  CHECK(dev.code.old("counter"));
  hotswap::stop(one).value();
  hotswap::stop(two).value();
}

TEST_CASE("a rebuild whose state is a new version of its schema has the state migrated by the schema's steps") {
  development dev;
  const auto v1 = dev.code.load<Counter>(dev.files.stage("counter_v1", "counter.so")).value();
  auto server = hotswap::start<Counter>(v1).value();
  hotswap::cast(server, Add{7});
  CHECK(state_fingerprint(server) == hotswap::detail::value_fingerprint<testing::v1::Count>);
  hotswap::module_watch watch(dev.code, {.print = dev.said.sink()});
  const auto report = watch.reload(dev.files.stage("counter_v1_grown", "grown.so"));
  INFO(to_string(report));
  REQUIRE(report);
  CHECK(state_fingerprint(server) == hotswap::detail::value_fingerprint<testing::v2::Count>);
  CHECK(hotswap::call(server, Get{}).value() == 7);
  hotswap::stop(server).value();
}

TEST_CASE("a rebuild whose state does not migrate is refused, and the build before serves on, loaded as it was") {
  development dev;
  const auto v2 = dev.code.load<Counter>(dev.files.stage("counter_v2", "counter.so")).value();
  auto server = hotswap::start<Counter>(v2).value();
  hotswap::cast(server, Add{3});
  hotswap::module_watch watch(dev.code, {.print = dev.said.sink()});
  const auto report = watch.reload(dev.files.stage("counter_v2_strings", "strings.so"));
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().code == hotswap::errc::code_change_failed);
  CHECK_THAT(to_string(report),
             Catch::Contains("this rebuild of vsn 2 holds its state as std::") &&
                 Catch::EndsWith("and the server's is not another version of its schema: make the new state a new "
                                 "version of the old one's schema; every server runs its old code with its old state"));
  CHECK(dev.code.current("counter") == v2);
  CHECK_FALSE(dev.code.old("counter"));
  CHECK(hotswap::call(server, Get{}).value() == 3);
  hotswap::stop(server).value();
}

TEST_CASE("a handler of the build on probation that throws puts the reload's servers back on the build before") {
  development dev;
  SECTION("the same state") {
    const auto v2 = dev.code.load<Counter>(dev.files.stage("counter_v2", "counter.so")).value();
    auto one = hotswap::start<Counter>(v2).value();
    auto two = hotswap::start<Counter>(v2).value();
    hotswap::cast(one, Add{4});
    hotswap::cast(two, Add{5});
    hotswap::module_watch watch(dev.code, {.print = dev.said.sink()});
    REQUIRE(watch.reload(dev.files.stage("counter_v2_rebuilt", "rebuilt.so")));
    hotswap::cast(one, Add{1});  // the new build serves...
    CHECK(hotswap::call(one, Get{}).value() == 50);
    hotswap::cast(one, Add{13});  // ...until a handler of it throws
    REQUIRE(eventually([&] { return dev.said.has("rolled back"); }));
    const auto lines = dev.said.take();
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Matches("rolled back counter: server \\d+ failed in a handler of counter build "
                                        "[0-9a-f]{8} \\(13 is unlucky\\); back on build " +
                                        v2->build().substr(0, 8) + ", its state kept; 1 other server back too; build " +
                                        v2->build().substr(0, 8) + " is current again"));
    CHECK(hotswap::call(one, Get{}).value() == 5);  // alive, on the build before, with its state
    CHECK(hotswap::call(two, Get{}).value() == 5);
    CHECK(dev.code.current("counter") == v2);
    CHECK_FALSE(dev.code.old("counter"));
    // The next rebuild reloads as the first did.
    REQUIRE(watch.reload(dev.files.stage("counter_v2_rebuilt", "again.so")));
    CHECK(hotswap::call(two, Get{}).value() == 50);
    hotswap::stop(one).value();
    hotswap::stop(two).value();
  }
  SECTION("a state migrated there and back by its schema") {
    const auto v1 = dev.code.load<Counter>(dev.files.stage("counter_v1", "counter.so")).value();
    auto server = hotswap::start<Counter>(v1).value();
    hotswap::cast(server, Add{7});
    hotswap::module_watch watch(dev.code, {.print = dev.said.sink()});
    REQUIRE(watch.reload(dev.files.stage("counter_v1_grown", "grown.so")));
    hotswap::cast(server, Add{13});
    REQUIRE(eventually([&] { return dev.said.has("rolled back"); }));
    CHECK_THAT(dev.said.take()[0],
               Catch::Contains("back on build " + v1->build().substr(0, 8) + ", its state kept; build"));
    CHECK(state_fingerprint(server) == hotswap::detail::value_fingerprint<testing::v1::Count>);
    CHECK(hotswap::call(server, Get{}).value() == 7);
    hotswap::stop(server).value();
  }
  SECTION("none after the grace period") {
    const auto v2 = dev.code.load<Counter>(dev.files.stage("counter_v2", "counter.so")).value();
    auto server = hotswap::start<Counter>(v2).value();
    hotswap::module_watch watch(dev.code, {.grace_period = {}, .print = dev.said.sink()});
    REQUIRE(watch.reload(dev.files.stage("counter_v2_rebuilt", "rebuilt.so")));
    CHECK_FALSE(dev.code.old("counter"));  // no probation: the build before is purged at once
    hotswap::cast(server, Add{13});
    REQUIRE(eventually([&] { return !server.alive(); }));  // it crashes, as any server would
    CHECK(server.exit().kind == hotswap::exit_kind::crashed);
    CHECK(server.exit().what == "13 is unlucky");
  }
}

TEST_CASE("the watch reloads a module file its build has finished writing, and says why it refuses one") {
  development dev;
  const std::string path = dev.files.stage("counter_v2", "counter.so");
  const auto v2 = dev.code.load<Counter>(path).value();
  auto server = hotswap::start<Counter>(v2).value();
  hotswap::cast(server, Add{2});
  hotswap::module_watch watch(dev.code, {.settle = std::chrono::milliseconds(5), .print = dev.said.sink()});
  REQUIRE(watch.watch(dev.files.dir));
  // Rewritten in place in two writes, as a slow link would: the first half is never loaded (its
  // seal does not match), the whole file is.
  const std::string rebuilt = read_bytes(built("counter_v2_rebuilt"));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(rebuilt.data(), static_cast<std::streamsize>(rebuilt.size() / 2));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // time for the watch to try it (if it does not, the
                                                               // test proves less, and still passes rightly)
  CHECK(hotswap::call(server, Get{}).value() == 2);
  write_bytes(path, rebuilt);
  REQUIRE(eventually([&] { return dev.said.has("reloaded counter vsn 2"); }));
  CHECK(hotswap::call(server, Get{}).value() == 20);
  // A module built for another ABI is refused, and said so; the build on probation serves on.
  write_bytes(dev.files.dir + "/old_abi.so", read_bytes(built("counter_old_abi")));
  REQUIRE(eventually([&] { return dev.said.has("refused " + dev.files.dir + "/old_abi.so: "); }));
  const auto lines = dev.said.take();
  REQUIRE(lines.size() == 2);  // the reload, the refusal: nothing of the half-written file
  CHECK_THAT(lines[1], Catch::Contains("built for another ABI") && Catch::EndsWith("; the old code serves on"));
  CHECK(hotswap::call(server, Get{}).value() == 20);
  hotswap::stop(server).value();
}

TEST_CASE("a production code server refuses a rebuild of the same vsn, and the watch says how to take it") {
  hotswap::registry().add<testing::CountSchema>();
  scratch files;
  hotswap::code_server code({.directory = files.dir + "/copies"});
  printed said;
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter.so")).value();
  hotswap::module_watch watch(code, {.print = said.sink()});
  const auto report = watch.reload(files.stage("counter_v2_rebuilt", "rebuilt.so"));
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().code == hotswap::errc::not_newer);
  CHECK(hotswap::detail::worth_saying(report));
  CHECK_THAT(to_string(report), Catch::Contains("a code server in development mode takes that"));
  CHECK(code.current("counter") == v2);
}

TEST_CASE("a watched directory removed and made again (a clean rebuild) is watched again, and what it holds tried") {
  development dev;
  const std::string build = dev.files.dir + "/build", modules = build + "/modules";
  std::filesystem::create_directories(modules);
  const std::string path = modules + "/counter.so";
  write_bytes(path, read_bytes(built("counter_v2")));
  auto server = hotswap::start<Counter>(dev.code.load<Counter>(path).value()).value();
  hotswap::cast(server, Add{3});
  hotswap::module_watch watch(dev.code, {.settle = std::chrono::milliseconds(5), .print = dev.said.sink()});
  REQUIRE(watch.watch(modules));
  // The build directory and all in it removed, as a clean rebuild does.
  std::filesystem::remove_all(build);
  REQUIRE(eventually([&] { return dev.said.has(modules + " is gone: watching for it to come back"); }));
  // Made again, the rebuilt module written at once: before the watch is back, or after.
  std::filesystem::create_directories(modules);
  write_bytes(path, read_bytes(built("counter_v2_rebuilt")));
  REQUIRE(eventually([&] { return dev.said.has("reloaded counter vsn 2"); }));
  CHECK(dev.said.has(modules + " is back: watching it again, every module file is tried"));
  CHECK(hotswap::call(server, Get{}).value() == 30);
  // And watched as before.
  write_bytes(modules + "/old_abi.so", read_bytes(built("counter_old_abi")));
  REQUIRE(eventually([&] { return dev.said.has("refused " + modules + "/old_abi.so: "); }));
  hotswap::stop(server).value();
}

TEST_CASE("file events lost to an overflow of inotify's queue are said, and every module file is tried") {
  // The queue holds max_queued_events (a system setting, not changed here): while the watch's
  // thread is held in its print, more files are made than it holds, then the rebuilt module is
  // written, its events lost.
  long queue = 0;
  std::ifstream("/proc/sys/fs/inotify/max_queued_events") >> queue;
  REQUIRE(queue > 0);
  if (queue > 1'000'000) {
    WARN("max_queued_events is " << queue << ": too many files to overflow it; not tested");
    return;
  }
  development dev;
  const std::string path = dev.files.stage("counter_v2", "counter.so");
  auto server = hotswap::start<Counter>(dev.code.load<Counter>(path).value()).value();
  hotswap::cast(server, Add{3});
  std::mutex lock;
  std::condition_variable changed;
  bool held = false, go = false;
  auto print = dev.said.sink();
  hotswap::module_watch watch(dev.code, {.settle = std::chrono::milliseconds(5), .print = [&](const std::string& line) {
                                           print(line);
                                           std::unique_lock hold(lock);
                                           held = true;
                                           changed.notify_all();
                                           changed.wait(hold, [&] { return go; });
                                         }});
  REQUIRE(watch.watch(dev.files.dir));
  write_bytes(dev.files.dir + "/old_abi.so", read_bytes(built("counter_old_abi")));  // refused: a line
  {
    std::unique_lock hold(lock);
    changed.wait(hold, [&] { return held; });
  }
  for (long i = 0; i < queue / 2 + 1; ++i)  // two events each: made, closed
    ::close(::open((dev.files.dir + "/f" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  write_bytes(path, read_bytes(built("counter_v2_rebuilt")));
  {
    const std::lock_guard hold(lock);
    go = true;
  }
  changed.notify_all();
  REQUIRE(eventually([&] { return dev.said.has("reloaded counter vsn 2"); }));
  CHECK(dev.said.has("missed file events (inotify's queue overflowed): watching again, every module file is tried"));
  CHECK(hotswap::call(server, Get{}).value() == 30);
  hotswap::stop(server).value();
}
