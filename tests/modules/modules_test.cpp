// Modules: real shared libraries (built beside this test, see tests/CMakeLists.txt) loaded by the
// code server, run by servers, swapped under load, purged, rebuilt in place, and refused when bad.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <hotswap/modules.hpp>

#include "../runtime/servers.hpp"
#include "files.hpp"
#include "labelled.hpp"
#include "minimal.hpp"
#include "ticking.hpp"

using testing::Add;
using testing::built;
using testing::Counter;
using testing::eventually;
using testing::Get;
using testing::read_bytes;
using testing::scratch;
using testing::write_bytes;

namespace {

bool mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(path) != std::string::npos) return true;
  return false;
}

/// The library with its note section marked as holding nothing in the file, and pointing far
/// past its end: a reader trusting the section type would read out of bounds.
std::string without_note(std::string bytes) {
  namespace elf = hotswap::detail::elf;
  elf::header header;
  std::memcpy(&header, bytes.data(), sizeof header);
  elf::section names;
  std::memcpy(&names, bytes.data() + header.shoff + header.shstrndx * sizeof(elf::section), sizeof names);
  for (std::size_t i = 0; i < header.shnum; ++i) {
    elf::section section;
    char* at = bytes.data() + header.shoff + i * sizeof(elf::section);
    std::memcpy(&section, at, sizeof section);
    if (std::string_view(bytes.data() + names.offset + section.name) != "hotswap_module") continue;
    section.type = elf::nobits;
    section.offset = std::uint64_t{1} << 40;
    std::memcpy(at, &section, sizeof section);
  }
  return bytes;
}

struct counting_schemas {
  counting_schemas() { hotswap::registry().add<testing::CountSchema>(); }
} registered;

long get(const hotswap::server_ref<Counter>& server) {
  return hotswap::call(server, Get{}).value();
}

/// suspend -> change_code -> resume.
hotswap::result<void> upgrade(const hotswap::server_ref<Counter>& server, const hotswap::module_ptr& to, int from) {
  hotswap::sys::suspend(server).value();
  auto changed = hotswap::sys::change_code(server, to, from);
  hotswap::sys::resume(server).value();
  return changed;
}

}  // namespace

TEST_CASE("a server started from a module behaves as one built in") {
  const scratch files;
  hotswap::code_server code;
  const auto v1 = code.load<Counter>(files.stage("counter_v1", "counter.so")).value();
  CHECK(v1->name() == "counter");
  CHECK(v1->vsn() == 1);
  CHECK(v1->implementation() == "testing::CounterV1");
  CHECK(v1->interface_name() == "Counter");
  CHECK(v1->implements<Counter>());
  CHECK(code.current("counter") == v1);
  CHECK_FALSE(code.old("counter"));
  CHECK(mapped(v1->copy()));
  CHECK(v1->copy().rfind(code.directory(), 0) == 0);

  auto server = hotswap::start<Counter>(v1, {.name = "module_counter"}).value();
  for (int i = 1; i <= 100; ++i) hotswap::cast(server, Add{i});
  CHECK(get(server) == 5050);
  CHECK(hotswap::whereis<Counter>("module_counter") == server);
  const auto status = hotswap::sys::get_status(server).value();
  CHECK(status.implementation == "testing::CounterV1");
  CHECK(status.vsn == 1);
  CHECK(hotswap::sys::get_state<testing::v1::Count>(server).value().count == 5050);
  REQUIRE(v1->servers().size() == 1);
  CHECK(v1->servers()[0] == server);

  // A crash in the module's handler crashes the server, as built in; the module is then free.
  hotswap::send(server, testing::Crash{});
  CHECK(eventually([&] { return !server.alive(); }));
  CHECK(server.exit().what == "asked to crash");
  CHECK(v1->servers().empty());
}

TEST_CASE("a supervisor's module_child starts the module's current version, each restart the one current then") {
  const scratch files;
  hotswap::code_server code;
  auto sup = hotswap::start_supervisor({.intensity = 5},
                                       {hotswap::module_child<Counter>("counter", code, "counter", {.name = "mc"})});
  REQUIRE_FALSE(sup);  // the module is not loaded yet
  CHECK(sup.error().what == "child counter did not start: module counter is not loaded");
  const auto v1 = code.load<Counter>(files.stage("counter_v1", "counter_v1.so")).value();
  auto root = hotswap::start_supervisor({.intensity = 5},
                                        {hotswap::module_child<Counter>("counter", code, "counter", {.name = "mc"})})
                  .value();
  const auto first = hotswap::whereis<Counter>("mc").value();
  CHECK(hotswap::sys::get_status(first).value().implementation == "testing::CounterV1");
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();
  hotswap::send(first, testing::Crash{});
  hotswap::server_ref<Counter> second;
  REQUIRE(eventually([&] {
    const auto now = hotswap::whereis<Counter>("mc");
    return now && now->id() != first.id() && (second = *now, true);
  }));
  CHECK(hotswap::sys::get_status(second).value().implementation == "testing::CounterV2");
  REQUIRE(hotswap::stop(root));
  CHECK(code.purge("counter").has_value());  // nothing runs vsn 1 any more
}

TEST_CASE("init's argument is checked against the module's init") {
  const scratch files;
  hotswap::code_server code;
  const auto v1 = code.load<Counter>(files.stage("counter_v1", "counter.so")).value();
  const auto wrong = hotswap::start<Counter>(v1, 7);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().code == hotswap::errc::wrong_argument);
  CHECK(wrong.error().what == "testing::CounterV1 (module counter) takes nothing in init, not int");
}

TEST_CASE("swap under load: producers cast while the server moves between module versions") {
  const scratch files;
  hotswap::code_server code;
  const auto v1 = code.load<Counter>(files.stage("counter_v1", "counter_v1.so")).value();
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();
  CHECK(code.current("counter") == v2);
  CHECK(code.old("counter") == v1);

  auto server = hotswap::start<Counter>(v1).value();
  constexpr int producers = 4;
  constexpr int each = testing::sanitized ? 20'000 : 200'000;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&] {
      for (int i = 0; i < each; ++i) hotswap::cast(server, Add{1});
      done.fetch_add(1);
    });
  int swaps = 0;
  while (done.load() < producers) {  // up to v2 and down to v1 again, migrating the state each way
    const bool up = swaps % 2 == 0;
    upgrade(server, up ? v2 : v1, up ? 1 : 2).value();
    ++swaps;
  }
  for (auto& thread : threads) thread.join();
  if (swaps % 2 == 1) upgrade(server, v1, 2).value();
  CHECK(get(server) == long{producers} * each);
  CHECK(swaps > 0);
  CHECK(hotswap::sys::get_status(server).value().implementation == "testing::CounterV1");
  hotswap::stop(server).value();
}

TEST_CASE("purge: soft refuses while a server runs the old version, and unmaps it once none does") {
  const scratch files;
  hotswap::code_server code;
  auto v1 = code.load<Counter>(files.stage("counter_v1", "counter_v1.so")).value();
  auto server = hotswap::start<Counter>(v1, {.name = "purge_me"}).value();
  hotswap::cast(server, Add{41});
  auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();

  const auto refused = code.purge("counter");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::not_purged);
  CHECK(refused.error().what == "counter vsn 1 is still used by server " + std::to_string(server.id()) +
                                    " (purge_me): change their code or stop them first (or purge with "
                                    "purge_mode::force)");
  CHECK(code.old("counter") == v1);  // unchanged
  CHECK(get(server) == 41);

  // Nothing newer can come in while the old version runs: at most current and old.
  const auto third = code.load<Counter>(files.stage("counter_v3", "counter_v3.so"));
  REQUIRE_FALSE(third);
  CHECK(third.error().code == hotswap::errc::not_purged);
  CHECK(code.current("counter") == v2);

  upgrade(server, v2, 1).value();
  CHECK(get(server) == 41);
  const std::string copy = v1->copy();
  v1.reset();
  const auto purged = code.purge("counter").value();
  CHECK(purged.vsn == 1);
  CHECK(purged.unmapped);
  CHECK_FALSE(mapped(copy));
  CHECK_FALSE(code.old("counter"));
  CHECK(code.purge("counter").value().vsn == 0);  // nothing left to purge
  CHECK(code.purge("nothing").error().code == hotswap::errc::no_module);
  CHECK(get(server) == 41);
  hotswap::stop(server).value();
}

TEST_CASE("retire makes the current version old: the module can be reloaded at any vsn, then purged") {
  const scratch files;
  hotswap::code_server code;
  const std::string v1_path = files.stage("counter_v1", "counter_v1.so");
  auto v1 = code.load<Counter>(v1_path).value();
  auto server = hotswap::start<Counter>(v1).value();
  hotswap::cast(server, Add{9});
  auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();
  upgrade(server, v2, 1).value();
  v1.reset();
  CHECK(code.purge("counter").value().unmapped);

  REQUIRE(code.retire("counter"));  // v2 is old now (the server runs on), nothing is current
  CHECK_FALSE(code.current("counter"));
  CHECK(code.old("counter") == v2);
  v1 = code.load<Counter>(v1_path).value();  // reloaded: a fresh copy of the same file
  CHECK(code.current("counter") == v1);
  CHECK(v1->vsn() == 1);
  CHECK(code.retire("counter").error().code == hotswap::errc::not_purged);  // v2 still runs
  upgrade(server, v1, 2).value();                                           // downgraded, v2's state migrated back
  CHECK(get(server) == 9);
  v2.reset();
  CHECK(code.purge("counter").value().unmapped);
  CHECK(code.retire("nothing").error().code == hotswap::errc::no_module);
  hotswap::stop(server).value();
}

TEST_CASE("a failing code_change from a module leaves the server on its version, serving") {
  const scratch files;
  hotswap::code_server code;
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();
  auto server = hotswap::start<Counter>(v2).value();
  hotswap::cast(server, Add{3});
  const auto v3 = code.load<Counter>(files.stage("counter_v3", "counter_v3.so")).value();  // v2 old now
  const auto refused = upgrade(server, v3, 2);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::code_change_failed);
  CHECK(refused.error().what == "v3 refuses");
  CHECK(hotswap::sys::get_status(server).value().vsn == 2);
  CHECK(get(server) == 3);
  CHECK(v3->servers().empty());
  CHECK(v2->servers().size() == 1);
  hotswap::stop(server).value();
}

TEST_CASE(
    "a module whose interface is a declared later version of the running one is taken; earlier clients "
    "keep calling, and going back refuses what only the later one takes") {
  const scratch files;
  hotswap::code_server code;
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();
  auto server = hotswap::start<Counter>(v2).value();
  hotswap::cast(server, Add{5});
  CHECK_FALSE(hotswap::server_ref<testing::CounterLater>::from(server));
  const auto later = code.load<Counter>(files.stage("counter_later_interface", "counter_v4.so")).value();
  CHECK(later->implements<Counter>());
  CHECK(later->implements<testing::CounterLater>());
  CHECK(later->interface_lineage() ==
        std::vector<std::uint64_t>{Counter::fingerprint, testing::CounterLater::fingerprint});
  REQUIRE(later->messages().size() == testing::CounterLater::size);
  CHECK(later->messages().back().name == "testing::Reset");
  CHECK(later->messages().back().since == 2);
  upgrade(server, later, 2).value();
  CHECK(get(server) == 5);  // the handle of Counter, built before the module
  auto reset = hotswap::server_ref<testing::CounterLater>::of(server).value();
  CHECK(hotswap::call(reset, testing::Reset{}).value() == 5);
  hotswap::cast(server, Add{2});
  CHECK(get(server) == 2);

  // Back to vsn 2, an earlier version of the interface: Reset is refused, the rest serves.
  upgrade(server, v2, 4).value();
  const auto refused = hotswap::call(reset, testing::Reset{});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::wrong_interface);
  CHECK(get(server) == 2);
  hotswap::stop(server).value();
}

TEST_CASE("force purge stops the servers on the old version") {
  const scratch files;
  hotswap::code_server code;
  auto v1 = code.load<Counter>(files.stage("counter_v1", "counter_v1.so")).value();
  auto a = hotswap::start<Counter>(v1).value();
  auto b = hotswap::start<Counter>(v1).value();
  const std::string copy = v1->copy();
  v1.reset();
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();
  auto c = hotswap::start<Counter>(v2).value();
  const auto report = code.purge("counter", hotswap::purge_mode::force).value();
  CHECK(report.servers_stopped == 2);
  CHECK_FALSE(a.alive());
  CHECK_FALSE(b.alive());
  CHECK(c.alive());
  // The stopped servers' handles still hold the version's table (for messages sent to them).
  CHECK_FALSE(report.unmapped);
  CHECK(mapped(copy));
  a = {};
  b = {};
  std::size_t closed = 0;
  CHECK(eventually([&] { return (closed += code.collect()) == 1; }));
  CHECK_FALSE(mapped(copy));
  hotswap::stop(c).value();
}

TEST_CASE("force purge fails, naming it, when a server on the old version cannot be stopped; the version stays") {
  const scratch files;
  hotswap::code_server code;
  auto v1 = code.load<Counter>(files.stage("counter_v1", "counter_v1.so")).value();
  auto stuck = hotswap::start<Counter>(v1, {.name = "stuck"}).value();
  testing::gate held;
  hotswap::cast(stuck, held.message());
  REQUIRE(held.entered());  // the module's handler runs, and will not return until opened
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();

  const auto refused = code.purge("counter", hotswap::purge_mode::force, std::chrono::milliseconds(50));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::not_purged);
  CHECK(refused.error().what == "counter vsn 1 is still used by server " + std::to_string(stuck.id()) +
                                    " (stuck), which did not stop within 50 ms (a handler that has not returned); "
                                    "its stop may take effect later: purge again then");
  CHECK(code.old("counter") == v1);  // not forgotten while it runs
  CHECK(stuck.alive());
  const auto third = code.load<Counter>(files.stage("counter_v3", "counter_v3.so"));  // would push v1 out
  REQUIRE_FALSE(third);
  CHECK(third.error().code == hotswap::errc::not_purged);

  held.open();  // the handler returns; the stop that timed out takes effect
  CHECK(eventually([&] { return !stuck.alive(); }));
  stuck = {};
  const std::string copy = v1->copy();
  v1.reset();
  CHECK(code.purge("counter").value().vsn == 1);
  CHECK(eventually([&] { return code.collect(), !mapped(copy); }));
  CHECK(code.current("counter") == v2);
}

TEST_CASE("rebuilding a module file in place leaves its running copy alone; loading it again takes the new build") {
  const scratch files;
  hotswap::code_server code;
  const std::string path = files.stage("counter_v1", "counter.so");
  const auto v1 = code.load<Counter>(path).value();
  auto server = hotswap::start<Counter>(v1).value();
  hotswap::cast(server, Add{5});

  write_bytes(path, read_bytes(built("counter_v2")));  // rewritten in place, as a build would
  for (int i = 0; i < 100; ++i) hotswap::cast(server, Add{1});
  CHECK(get(server) == 105);

  write_bytes(path, read_bytes(built("counter_v2")).substr(0, 4096));  // a build caught half-way
  const auto half = code.load<Counter>(path);
  REQUIRE_FALSE(half);
  CHECK(half.error().code == hotswap::errc::truncated);
  CHECK(get(server) == 105);

  write_bytes(path, read_bytes(built("counter_v2")));
  const auto v2 = code.load<Counter>(path).value();
  CHECK(v2->vsn() == 2);
  CHECK(v2->copy() != v1->copy());
  upgrade(server, v2, 1).value();
  CHECK(get(server) == 105);
  CHECK(hotswap::sys::get_state<testing::v2::Count>(server).value().count == 105);
  hotswap::stop(server).value();
}

// -- seals: torn, modified, unsealed and unsigned files are refused before any of their code runs --

/// Where the seal of a module's file starts.
std::size_t seal_offset(const std::string& bytes) {
  const auto sections = hotswap::detail::find_module_sections(bytes, "module").value();
  REQUIRE(sections.seal.size() == sizeof(hotswap::detail::module_seal));
  return static_cast<std::size_t>(sections.seal.data() - bytes.data());
}

std::string key(const std::string& name) {
  return read_bytes(std::string(HOTSWAP_TEST_KEYS_DIR) + "/" + name + ".pub.pem");
}

TEST_CASE("a torn module file (the start of one build, the rest of another) is refused, its seal not matching") {
  const scratch files;
  const std::string one = read_bytes(built("minimal")), other = read_bytes(built("minimal_other_build"));
  REQUIRE(one.size() == other.size());
  REQUIRE(one.size() > 8192);
  const std::string torn = one.substr(0, 8192) + other.substr(8192);
  REQUIRE(torn != one);
  REQUIRE(torn != other);
  REQUIRE(hotswap::detail::find_module_sections(torn, "torn"));  // every check of shape passes: the attack
  write_bytes(files.dir + "/torn.so", torn);
  hotswap::code_server code;
  const auto refused = code.load(files.dir + "/torn.so");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::torn);
  CHECK(refused.error().what == files.dir +
                                    "/torn.so: torn or modified since it was built: its bytes do not match "
                                    "its seal (a rebuild or a copy that was not atomic, caught half-way?)");
  CHECK_FALSE(code.current("minimal"));
  // Each build whole loads.
  const auto whole = code.load<Minimal>(files.stage("minimal_other_build", "whole.so"));
  REQUIRE(whole);
  auto server = hotswap::start<Minimal>(*whole).value();
  CHECK(hotswap::call(server, Ping{}).value() == 2);  // that build's constant
  hotswap::stop(server).value();
}

TEST_CASE("a module file rewritten in place while it is read is never taken torn") {
  const scratch files;
  const std::string builds[] = {read_bytes(built("minimal")), read_bytes(built("minimal_other_build"))};
  const std::string path = files.dir + "/rewritten.so";
  write_bytes(path, builds[0]);
  std::atomic<bool> done{false};
  std::thread rewriter([&] {  // as a copy that is not atomic: in place, 4 KiB at a time
    const int fd = ::open(path.c_str(), O_WRONLY);
    for (std::size_t round = 0; !done.load(); ++round)
      for (std::size_t at = 0; at < builds[0].size(); at += 4096)
        (void)::pwrite(fd, builds[round % 2].data() + at, std::min<std::size_t>(4096, builds[0].size() - at),
                       static_cast<off_t>(at));
    ::close(fd);
  });
  int taken = 0, refused_torn = 0, shapeless = 0;
  for (int read = 0; read < 500; ++read) {
    const auto bytes = hotswap::detail::read_module_file(path, path, std::size_t{1} << 26).value();
    const auto sections = hotswap::detail::find_module_sections(bytes, path);
    if (!sections) {  // torn where the shape checks see it
      ++shapeless;
      continue;
    }
    const auto sealed = hotswap::detail::check_seal(bytes, sections->seal, {}, path);
    if (sealed) {
      ++taken;
      CHECK((bytes == builds[0] || bytes == builds[1]));
    } else {
      ++refused_torn;
      CHECK(sealed.error().code == hotswap::errc::torn);
    }
  }
  done = true;
  rewriter.join();
  INFO(taken << " taken whole, " << refused_torn << " refused torn, " << shapeless << " refused by shape");
  CHECK(shapeless < 500);  // the seal was checked
}

TEST_CASE("a code server given trusted keys takes only modules signed by one of them") {
  const scratch files;
  SECTION("signed by a trusted key: taken") {
    hotswap::code_server code({.trusted_keys = {key("other"), key("trusted")}});
    const auto loaded = code.load(files.stage("minimal_signed_trusted", "signed.so"));
    REQUIRE(loaded);
    CHECK((*loaded)->name() == "minimal");
  }
  SECTION("no trusted keys: a signed module need only be sealed") {
    hotswap::code_server code;
    CHECK(code.load(files.stage("minimal_signed_other", "signed.so")));
  }
  struct refusal {
    std::string file;
    hotswap::errc code;
    std::string reason;
  };
  std::string forged = read_bytes(built("minimal_signed_trusted"));
  forged[seal_offset(forged) + offsetof(hotswap::detail::module_seal, signature) + 7] ^= 1;
  write_bytes(files.dir + "/forged.so", forged);
  std::string changed = read_bytes(built("minimal_signed_trusted"));
  changed[changed.size() / 2] ^= 1;
  write_bytes(files.dir + "/changed.so", changed);
  const std::vector<refusal> refusals = {
      {files.stage("minimal", "unsigned.so"), hotswap::errc::untrusted,
       "not signed, and this code server takes only modules signed by a trusted key "
       "(code_server_options::trusted_keys; sign with HOTSWAP_SIGNING_KEY)"},
      {files.stage("minimal_signed_other", "other.so"), hotswap::errc::untrusted, "signed by key "},
      {files.dir + "/forged.so", hotswap::errc::untrusted, "its signature by key "},
      {files.dir + "/changed.so", hotswap::errc::torn, "torn or modified since it was built"},
  };
  hotswap::code_server code({.trusted_keys = {key("trusted")}});
  for (const auto& bad : refusals) {
    INFO(bad.file);
    const auto loaded = code.load(bad.file);
    REQUIRE_FALSE(loaded);
    CHECK(loaded.error().code == bad.code);
    CHECK(loaded.error().what.rfind(bad.file + ": " + bad.reason, 0) == 0);
    INFO(loaded.error().what);
    CHECK_FALSE(code.current("minimal"));
  }
  CHECK(code.load(files.stage("minimal_signed_trusted", "signed.so")));

  hotswap::code_server misconfigured({.trusted_keys = {key("trusted"), "not a key"}});
  const auto refused = misconfigured.load(files.stage("minimal_signed_trusted", "signed.so"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::untrusted);
  CHECK(refused.error().what == files.dir +
                                    "/signed.so: trusted key 2 is not an Ed25519 public key in PEM "
                                    "(hotswap-seal keygen writes one), so no module is taken");
}

// -- the copy directory: nobody else can put their code where the code server opens it --

/// A directory others can write, and not sticky: anyone can rename what is in it.
std::string open_to_all(const std::string& dir) {
  ::mkdir(dir.c_str(), 0777);
  ::chmod(dir.c_str(), 0777);  // whatever the umask
  return dir;
}

TEST_CASE("a copy directory inside a directory others can write is refused, given or from TMPDIR") {
  const scratch files;
  const std::string open = open_to_all(files.dir + "/open");
  const std::string module = files.stage("minimal", "minimal.so");
  const std::string why = "the directory " + open +
                          " is writable by every user: loading it would run code others "
                          "could have written (it holds the directory for copies)";
  {
    hotswap::code_server code({.directory = open + "/copies"});
    const auto refused = code.load(module);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == hotswap::errc::unsafe_path);
    CHECK(refused.error().what == module + ": " + why);
  }
  {
    const std::string saved = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "";
    ::setenv("TMPDIR", open.c_str(), 1);
    hotswap::code_server code;
    const auto refused = code.load(module);
    saved.empty() ? ::unsetenv("TMPDIR") : ::setenv("TMPDIR", saved.c_str(), 1);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == hotswap::errc::unsafe_path);
    CHECK(refused.error().what == module + ": " + why);
  }
  // Nothing was left behind in the open directory.
  CHECK(::rmdir(open.c_str()) == 0);
}

TEST_CASE("copies go to the directory the code server opened, even once its path names another") {
  const scratch files;
  const std::string copies = files.dir + "/copies", elsewhere = files.dir + "/elsewhere";
  ::mkdir(elsewhere.c_str(), 0700);
  hotswap::code_server code({.directory = copies});
  const auto v1 = code.load<Counter>(files.stage("counter_v1", "v1.so")).value();
  // The directory renamed away and a symbolic link to another put in its place, as the attack did.
  REQUIRE(::rename(copies.c_str(), (files.dir + "/moved").c_str()) == 0);
  REQUIRE(::symlink(elsewhere.c_str(), copies.c_str()) == 0);
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "v2.so")).value();
  CHECK(mapped(files.dir + "/moved/counter-v2-"));
  CHECK_FALSE(mapped(elsewhere));
  CHECK(::rmdir(elsewhere.c_str()) == 0);  // empty: nothing was written through the link
  auto server = hotswap::start<Counter>(v2).value();
  hotswap::cast(server, Add{2});
  CHECK(get(server) == 2);
  hotswap::stop(server).value();
}

TEST_CASE("a module reached through a directory others can write is refused, even when the file it names is safe") {
  const scratch files;
  const std::string open = open_to_all(files.dir + "/open");
  const std::string module = files.stage("minimal", "minimal.so");
  REQUIRE(::symlink(module.c_str(), (open + "/link.so").c_str()) == 0);
  hotswap::code_server code;
  const auto refused = code.load(open + "/link.so");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::unsafe_path);
  CHECK(refused.error().what == open + "/link.so: the directory " + open +
                                    " is writable by every user: loading it would run code others could have written");
  CHECK(code.load(module));  // the file itself, by its own path
}

TEST_CASE("bad modules are refused with the file and the reason; nothing changes and servers serve on") {
  const scratch files;
  hotswap::code_server code;
  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();
  auto server = hotswap::start<Counter>(v2).value();
  hotswap::cast(server, Add{7});

  struct bad_file {
    std::string path;
    hotswap::errc code;
    std::string reason;  // what the error says after "<path>: "
  };
  const std::string dir = files.dir;
  write_bytes(dir + "/notes.so", "not a library\n");
  const std::string whole = read_bytes(built("counter_v1"));
  write_bytes(dir + "/truncated.so", whole.substr(0, whole.size() / 2));
  files.stage("counter_v1", "world_writable.so");
  ::chmod((dir + "/world_writable.so").c_str(), 0666);
  ::mkdir((dir + "/shared").c_str(), 0775);
  ::chmod((dir + "/shared").c_str(), 0775);  // whatever the umask
  files.stage("counter_v1", "shared/counter.so");
  ::mkfifo((dir + "/fifo.so").c_str(), 0600);  // opening it for reading would wait for a writer
  write_bytes(dir + "/huge.so", "");
  REQUIRE(::truncate((dir + "/huge.so").c_str(), off_t{100} << 20) == 0);  // 100 MiB, sparse: none of it is read
  write_bytes(dir + "/no_note.so", without_note(read_bytes(built("counter_v3"))));
  std::string unsealed = read_bytes(built("counter_v3"));
  std::fill_n(
      unsealed.begin() + static_cast<std::ptrdiff_t>(seal_offset(unsealed) + sizeof hotswap::detail::seal_marker),
      hotswap::detail::seal_payload, '\0');
  write_bytes(dir + "/unsealed.so", unsealed);

  const std::vector<bad_file> cases = {
      {dir + "/missing.so", hotswap::errc::no_file, "No such file or directory"},
      {dir + "/notes.so", hotswap::errc::not_a_library, "not a shared library (not an ELF file)"},
      {dir + "/truncated.so", hotswap::errc::truncated, "truncated: "},
      {dir + "/fifo.so", hotswap::errc::not_a_library, "not a regular file"},
      {dir + "/huge.so", hotswap::errc::too_large,
       "104857600 bytes, more than this code server takes (67108864; code_server_options::largest_module)"},
      {dir + "/no_note.so", hotswap::errc::no_descriptor, "its hotswap_module section holds no note"},
      {dir + "/unsealed.so", hotswap::errc::unsealed,
       "not sealed: hotswap_add_module's post-link step (hotswap-seal) did not run"},
      {files.stage("counter_unguarded", "unguarded.so"), hotswap::errc::load_failed,
       "its static initializers would run as it is opened: link it with hotswap_module.ld (hotswap_add_module does)"},
      {files.stage("plain_library", "plain.so"), hotswap::errc::no_descriptor,
       "a shared library without a hotswap module descriptor (HOTSWAP_MODULE in one of its sources)"},
      {files.stage("counter_old_abi", "old_abi.so"), hotswap::errc::abi_mismatch, "built for another ABI: "},
      {files.stage("counter_other_interface", "other_interface.so"), hotswap::errc::wrong_interface,
       "variant::CounterV4 implements Counter with other messages than this program's, and not as a declared "
       "later version of it"},
      {files.stage("counter_other_schema", "other_schema.so"), hotswap::errc::schema_conflict,
       "its schema Count version 2 differs from this program's: count is i16 in it, i64 here (it has "
       "Count@2{count:i16,generation:i32}, this program Count@2{count:i64,generation:i32})"},
      {files.stage("counter_v1", "older.so"), hotswap::errc::not_newer,
       "counter vsn 1 is not newer than the current vsn 2"},
      {dir + "/world_writable.so", hotswap::errc::unsafe_path,
       "the file is writable by every user: loading it would run code others could have written"},
      {dir + "/shared/counter.so", hotswap::errc::unsafe_path,
       "the directory " + dir +
           "/shared is writable by its group: loading it would run code others could have "
           "written"},
      {files.stage("counter_throws", "throws.so"), hotswap::errc::initializer_failed,
       "a static initializer threw: the counter module refuses to load"},
  };
  for (const auto& bad : cases) {
    INFO(bad.path);
    const auto loaded = code.load<Counter>(bad.path);
    REQUIRE_FALSE(loaded);
    CHECK(loaded.error().code == bad.code);
    CHECK(loaded.error().what.rfind(bad.path + ": " + bad.reason, 0) == 0);
    INFO(loaded.error().what);
    CHECK(code.current("counter") == v2);
    CHECK_FALSE(code.old("counter"));
    hotswap::cast(server, Add{1});
    CHECK(hotswap::call(server, Get{}).value() > 7);
  }
  CHECK(get(server) == 7 + static_cast<long>(cases.size()));
  // Loaded without naming the interface, a module must still implement its loaded version's.
  const std::string untyped_path = files.stage("counter_other_interface", "untyped.so");
  const auto untyped = code.load(untyped_path);
  REQUIRE_FALSE(untyped);
  CHECK(untyped.error().code == hotswap::errc::wrong_interface);
  CHECK(untyped.error().what ==
        untyped_path +
            ": counter vsn 4 implements Counter differently from the loaded vsn 2 (Counter), and not as a declared "
            "later (or earlier) version of it: testing::Get is taken with another reply, or as another kind");
  // Nothing of the refused libraries stays mapped (the one whose initializer threw was opened).
  std::ifstream maps("/proc/self/maps");
  const std::string all{std::istreambuf_iterator<char>(maps), {}};
  CHECK(all.find(code.directory() + "/counter-v2-") != std::string::npos);
  CHECK(all.find(code.directory() + "/counter-v1-") == std::string::npos);
  CHECK(all.find(code.directory() + "/counter-v3-") == std::string::npos);
  hotswap::stop(server).value();
}

TEST_CASE("check says what a module is, refusing what load refuses before opening it; nothing changes") {
  const scratch files;
  hotswap::code_server code;
  const auto info = code.check(files.stage("counter_v2", "checked.so"));
  REQUIRE(info);
  CHECK(info->name == "counter");
  CHECK(info->vsn == 2);
  CHECK(info->interface_name == "Counter");
  CHECK(info->interface_fingerprint == Counter::fingerprint);
  CHECK_FALSE(info->implementation.empty());
  CHECK_FALSE(code.current("counter"));
  CHECK(code.directory().empty());  // nothing copied: the copies' directory comes with the first load

  const auto v2 = code.load<Counter>(files.stage("counter_v2", "counter_v2.so")).value();
  const auto older = code.check(files.stage("counter_v1", "older.so"));
  REQUIRE_FALSE(older);
  CHECK(older.error().code == hotswap::errc::not_newer);
  CHECK_FALSE(code.check(files.dir + "/missing.so"));
  // Its initializers have not run: check takes it, load then refuses it.
  const std::string throws = files.stage("counter_throws", "throws.so");
  CHECK(code.check(throws).value().vsn == 3);
  CHECK(code.load<Counter>(throws).error().code == hotswap::errc::initializer_failed);
  CHECK(code.current("counter") == v2);
  CHECK_FALSE(code.old("counter"));
}

TEST_CASE("a state that is not plain data keeps the code that made it loaded, as long as it lives") {
  const scratch files;
  hotswap::code_server code;
  auto v1 = code.load<labelled::Interface>(files.stage("labelled_v1", "labelled_v1.so")).value();
  auto server = hotswap::start<labelled::Interface>(v1).value();
  auto v2 = code.load<labelled::Interface>(files.stage("labelled_v2", "labelled_v2.so")).value();
  hotswap::sys::suspend(server).value();
  hotswap::sys::change_code(server, v2, 1, std::chrono::seconds(5)).value();  // handed on untouched (5 s: the timeout)
  hotswap::sys::resume(server).value();
  CHECK(hotswap::sys::get_status(server).value().vsn == 2);
  v1.reset();
  // The state points into v1's constants: v1 is still in use, by this server.
  const auto refused = code.purge("labelled");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::not_purged);
  CHECK(hotswap::call(server, labelled::Label{}).value() == "made by v1");
  // Back to v1 (now current again, retired v2 old): the state still holds v1, and now v2 too.
  REQUIRE(code.retire("labelled").error().code == hotswap::errc::not_purged);
  hotswap::sys::suspend(server).value();
  hotswap::sys::change_code(server, code.old("labelled"), 2).value();
  hotswap::sys::resume(server).value();
  auto v1_again = code.old("labelled");
  CHECK(v1_again->servers().size() == 1);  // listed once, though held by its table and its state
  CHECK(v2->servers().size() == 1);        // by the state alone
  CHECK(hotswap::call(server, labelled::Label{}).value() == "made by v1");
  hotswap::stop(server).value();
  server = {};
  const std::weak_ptr<const hotswap::module_version> v1_watch = v1_again;
  v1_again.reset();
  CHECK(eventually([&] { return v1_watch.use_count() == 1; }));  // the code server's hold alone
  CHECK(code.purge("labelled").value().unmapped);
}

TEST_CASE("a server a module starts on its own code is one of that version's servers") {
  const scratch files;
  hotswap::code_server code;
  auto v1 = code.load<labelled::Interface>(files.stage("labelled_v1", "labelled_v1.so")).value();
  auto parent = hotswap::start<labelled::Interface>(v1).value();
  REQUIRE(hotswap::call(parent, labelled::Spawn{}).value());
  auto child = hotswap::whereis<labelled::Interface>("spawned").value();
  const auto servers = v1->servers();
  CHECK(servers.size() == 2);
  CHECK(std::count(servers.begin(), servers.end(), child) == 1);
  CHECK(hotswap::call(child, labelled::Label{}).value() == "made by v1");
  (void)code.retire("labelled");
  CHECK(code.purge("labelled").error().what.find("(spawned)") != std::string::npos);
  const auto forced = code.purge("labelled", hotswap::purge_mode::force).value();
  CHECK(forced.servers_stopped == 2);
  CHECK_FALSE(child.alive());
}

TEST_CASE("the ABI description names what a module must share with the program") {
  const std::string_view abi = hotswap::abi_description;
  CHECK(abi.find("libstdc++") != std::string_view::npos);
  CHECK(abi.find("cxx11 abi 1") != std::string_view::npos);
  CHECK(abi.find("hotswap " HOTSWAP_VERSION_STRING " headers " HOTSWAP_DETAIL_HEADERS_DIGEST ";") !=
        std::string_view::npos);
  CHECK(abi.find("8-byte pointers; exceptions on; rtti on") != std::string_view::npos);
  CHECK(hotswap::abi_fingerprint == hotswap::detail::fnv1a(abi));
}

TEST_CASE("a module built from headers whose shared layouts changed is refused, whatever its version says") {
  // counter_changed_layout: the same source, compiler and hotswap version, built from a copy of
  // the headers whose server core has one member more (tests/modules/change_layout.py).
  const scratch files;
  hotswap::code_server code;
  const auto refused = code.load<Counter>(files.stage("counter_changed_layout", "changed_layout.so"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::abi_mismatch);
  // Its ABI text is the program's but for the headers' digest.
  const std::string& what = refused.error().what;
  const std::string module_side = "the module has \"";
  const auto from = what.find(module_side);
  REQUIRE(from != std::string::npos);
  std::string module_abi = what.substr(from + module_side.size());
  module_abi = module_abi.substr(0, module_abi.find('"'));
  const std::string program_abi(hotswap::abi_description);
  const auto digest_at = program_abi.find(HOTSWAP_DETAIL_HEADERS_DIGEST);
  REQUIRE(module_abi.size() == program_abi.size());
  CHECK(module_abi.substr(0, digest_at) == program_abi.substr(0, digest_at));
  CHECK(module_abi.substr(digest_at + 16) == program_abi.substr(digest_at + 16));
  CHECK(module_abi.substr(digest_at, 16) != HOTSWAP_DETAIL_HEADERS_DIGEST);
  CHECK_FALSE(code.current("counter"));  // nothing loaded
}

TEST_CASE("a symbolic link another user planted in a sticky directory is refused, as protected_symlinks would") {
  if (::geteuid() != 0) {
    WARN("not root: cannot give a link to another user (CI runs this as root)");
    return;
  }
  const scratch files;
  const std::string sticky = files.dir + "/tmp";
  REQUIRE(::mkdir(sticky.c_str(), 0700) == 0);
  REQUIRE(::chmod(sticky.c_str(), 01777) == 0);  // as /tmp is
  const std::string module = files.stage("minimal", "minimal.so");
  REQUIRE(::symlink(module.c_str(), (sticky + "/planted.so").c_str()) == 0);
  REQUIRE(::lchown((sticky + "/planted.so").c_str(), 65534, 65534) == 0);
  REQUIRE(::symlink(module.c_str(), (sticky + "/mine.so").c_str()) == 0);
  REQUIRE(::symlink((sticky + "/planted.so").c_str(), (files.dir + "/through.so").c_str()) == 0);
  hotswap::code_server code;
  for (const std::string& path : {sticky + "/planted.so", files.dir + "/through.so"}) {
    const auto refused = code.check(path);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == hotswap::errc::unsafe_path);
    CHECK(refused.error().what == path + ": the symbolic link " + sticky +
                                      "/planted.so belongs to uid 65534, in the sticky directory " + sticky +
                                      " others can write: another user could have planted it (protected_symlinks "
                                      "refuses it too)");
  }
  CHECK(code.load(sticky + "/mine.so"));  // a link of this user's is followed
}

// ---- what a program leaves on disk ----

namespace {

bool exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

/// $TMPDIR as `dir` while it lives.
struct temporary_dir {
  std::string saved;
  bool was_set;
  explicit temporary_dir(const std::string& dir) : was_set(std::getenv("TMPDIR") != nullptr) {
    if (was_set) saved = std::getenv("TMPDIR");
    ::setenv("TMPDIR", dir.c_str(), 1);
  }
  ~temporary_dir() { was_set ? ::setenv("TMPDIR", saved.c_str(), 1) : ::unsetenv("TMPDIR"); }
};

/// A copy directory as a program killed by a signal leaves it: made (under $TMPDIR) by the code
/// server's own function in a child process, a copy written in it (and a symbolic link named as
/// a copy, to `link`, if given), then the child killed, unless it is to `stay` alive until
/// `release` is called.
struct left_by_child {
  pid_t pid = -1;
  std::string directory;
  int hold = -1;  // the child lives while this is open

  explicit left_by_child(bool stay, const std::string& link = {}) {
    int report[2], held[2];
    REQUIRE(::pipe(report) == 0);
    REQUIRE(::pipe(held) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child: nothing of Catch's
      ::close(report[0]);
      ::close(held[1]);
      auto opened = hotswap::detail::open_copy_directory("", "a test");
      if (!opened) ::_exit(1);
      ::close(::openat(opened->fd, "counter-v1-0.so", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500));
      if (!link.empty()) (void)::symlinkat(link.c_str(), opened->fd, "counter-v1-1.so");
      (void)::write(report[1], opened->name.data(), opened->name.size());
      ::close(report[1]);
      char byte;
      if (stay) (void)::read(held[0], &byte, 1);  // until the parent closes its end
      ::kill(::getpid(), SIGKILL);
    }
    ::close(report[1]);
    ::close(held[0]);
    hold = held[1];
    char chunk[512];
    for (ssize_t got; (got = ::read(report[0], chunk, sizeof chunk)) > 0;)
      directory.append(chunk, static_cast<std::size_t>(got));
    ::close(report[0]);
    REQUIRE(exists(directory + "/counter-v1-0.so"));
    if (!stay) release();
  }
  ~left_by_child() { release(); }
  void release() {
    if (hold < 0) return;
    ::close(std::exchange(hold, -1));
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  }
};

}  // namespace

TEST_CASE("a stopped server's timers let go of it at once, and of its module: the module can be unloaded") {
  const scratch files;
  std::string directory;
  {
    hotswap::code_server code;
    auto v1 = code.load<ticking::Interface>(files.stage("ticking", "ticking.so")).value();
    directory = code.directory();
    // Its init set two timers on itself an hour apart: one holds the server, one the module too.
    auto server = hotswap::start<ticking::Interface>(v1).value();
    CHECK(hotswap::call(server, ticking::Ticks{}).value() == 0);
    hotswap::stop(server).value();
    server = {};
    const std::weak_ptr<const hotswap::module_version> watch = v1;
    v1.reset();
    CHECK(eventually([&] { return watch.use_count() == 1; }));  // the code server's hold alone
    REQUIRE(code.retire("ticking"));
    CHECK(code.purge("ticking").value().unmapped);
  }
  CHECK_FALSE(exists(directory));
}

TEST_CASE("a code server's end leaves no copy behind, even of a version a server still runs") {
  const scratch files;
  std::string directory;
  hotswap::server_ref<Counter> server;
  {
    hotswap::code_server code;
    server = hotswap::start<Counter>(code.load<Counter>(files.stage("counter_v1", "v1.so")).value()).value();
    directory = code.directory();
    REQUIRE(exists(directory));
  }
  CHECK_FALSE(exists(directory));
  hotswap::cast(server, Add{2});  // its code is still mapped
  CHECK(get(server) == 2);
  hotswap::stop(server).value();
}

TEST_CASE("a code server removes the copy directories killed programs of its user left, and only those") {
  const scratch files;
  const temporary_dir tmp(files.dir);
  const std::string target = files.dir + "/target";
  write_bytes(target, "not a copy");
  left_by_child killed(false);
  left_by_child killed_with_link(false, target);  // not provably a code server's: kept whole
  left_by_child alive(true);
  // Named for a dead pid of another pid namespace (a container sharing the directory): kept.
  struct stat ns {};
  REQUIRE(::stat("/proc/self/ns/pid", &ns) == 0);
  const std::string other_namespace =
      files.dir + "/hotswap-modules-" + std::to_string(killed.pid) + "-" + std::to_string(ns.st_ino + 1) + "-abcdef";
  REQUIRE(::mkdir(other_namespace.c_str(), 0700) == 0);
  // A link named as one, to a directory of a dead pid: not followed.
  const std::string elsewhere = files.dir + "/elsewhere";
  REQUIRE(::mkdir(elsewhere.c_str(), 0700) == 0);
  write_bytes(elsewhere + "/counter-v1-0.so", "");
  const std::string linked =
      files.dir + "/hotswap-modules-" + std::to_string(killed.pid) + "-" + std::to_string(ns.st_ino) + "-ghijkl";
  REQUIRE(::symlink(elsewhere.c_str(), linked.c_str()) == 0);
  // Named for a dead pid, but its lock held (a child it forked goes on with its code server): kept.
  left_by_child forked_on(false);
  const int still_used = ::open(forked_on.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(still_used >= 0);
  REQUIRE(::flock(still_used, LOCK_EX | LOCK_NB) == 0);
  { const hotswap::code_server code; }
  CHECK(exists(forked_on.directory + "/counter-v1-0.so"));
  ::close(still_used);
  CHECK_FALSE(exists(killed.directory));
  CHECK(exists(killed_with_link.directory + "/counter-v1-0.so"));
  CHECK(read_bytes(target) == "not a copy");
  CHECK(exists(alive.directory + "/counter-v1-0.so"));
  CHECK(exists(other_namespace));
  CHECK(exists(linked));
  CHECK(exists(elsewhere + "/counter-v1-0.so"));
  // Killed too: the next code server removes it. One given a directory looks nowhere else.
  alive.release();
  { const hotswap::code_server code({.directory = files.dir + "/copies"}); }
  CHECK(exists(alive.directory));
  { const hotswap::code_server code; }
  CHECK_FALSE(exists(alive.directory));
  CHECK_FALSE(exists(forked_on.directory));  // let go of: removed
}
