// Release "shop": a running program's release of three servers, for the release handler's tests
// and the control socket's.
#pragma once

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <hotswap/releases.hpp>

#include "../runtime/servers.hpp"
#include "files.hpp"
#include "minimal.hpp"

namespace testing {

namespace sys = hotswap::sys;

/// Release "shop" 1 (counter vsn 1 and minimal vsn 1) booted and running three servers: a
/// (count 5) and b (count 9) on the counter, c (state 1) on minimal.
struct running_release {
  testing::scratch files;
  hotswap::code_server code;
  struct said {
    std::mutex lock;
    std::vector<std::string> lines;  // "stage: line", on the handler's thread
  } log;
  hotswap::release_handler releases{code, {.log = [this](hotswap::upgrade_stage stage, const std::string& line) {
                                      const std::lock_guard hold(log.lock);
                                      log.lines.push_back(std::string(to_string(stage)) + ": " + line);
                                    }}};
  hotswap::server_ref<Counter> a, b;
  hotswap::server_ref<Minimal> c;
  int sent = 0;  // Adds of 1 sent to a and b during upgrades

  running_release() {
    REQUIRE(releases.boot(manifest("1", {"counter_v1", "minimal"})));
    a = hotswap::start<Counter>(code.current("counter")).value();
    b = hotswap::start<Counter>(code.current("counter")).value();
    c = hotswap::start<Minimal>(code.current("minimal")).value();
    hotswap::cast(a, Add{5});
    hotswap::cast(b, Add{9});
    REQUIRE(hotswap::call(a, Get{}).value() == 5);  // handled before any sys request below
    REQUIRE(hotswap::call(b, Get{}).value() == 9);
  }
  ~running_release() {
    (void)hotswap::stop(a);
    (void)hotswap::stop(b);
    (void)hotswap::stop(c);
    testing::exits().take();
  }

  /// Whether the release handler's log said `line`.
  bool logged(const std::string& line) {
    const std::lock_guard hold(log.lock);
    return std::find(log.lines.begin(), log.lines.end(), line) != log.lines.end();
  }
  bool logged_starting(const std::string& start) {
    const std::lock_guard hold(log.lock);
    return std::any_of(log.lines.begin(), log.lines.end(),
                       [&](const std::string& line) { return line.starts_with(start); });
  }

  /// Release shop `vsn` of the built modules named, staged here with its manifest.
  std::string manifest(const std::string& vsn, const std::vector<std::string>& modules) const {
    std::string list;
    for (const auto& module : modules) {
      if (module.ends_with(".so"))  // a file that is not there
        list += (list.empty() ? "\"" : ", \"") + module + "\"";
      else
        list += (list.empty() ? "\"" : ", \"") + files.stage(module, module + "-" + vsn + ".so") + "\"";
    }
    const std::string path = files.dir + "/shop-" + vsn + ".release.json";
    testing::write_bytes(
        path, R"({"hotswap_release": 1, "name": "shop", "vsn": ")" + vsn + R"(", "modules": [)" + list + "]}");
    return path;
  }

  /// Upgrade options whose progress sends 10 Adds to a and b while they are suspended.
  hotswap::upgrade_options sending(std::vector<std::string>* lines = nullptr) {
    hotswap::upgrade_options options;
    options.progress = [this, lines](hotswap::upgrade_stage stage, const std::string& line) {
      if (lines) lines->push_back(std::string(to_string(stage)) + ": " + line);
      if (stage != hotswap::upgrade_stage::suspend) return;
      for (int i = 0; i < 10; ++i, ++sent) {
        hotswap::cast(a, Add{1});
        hotswap::cast(b, Add{1});
      }
    };
    return options;
  }

  /// Everything as release 1 left it: the code server's versions, each server's table and state
  /// (compared whole), serving, with what was sent during the attempt handled.
  void check_release_1_runs() {
    CHECK(code.current("counter")->vsn() == 1);
    CHECK_FALSE(code.old("counter"));
    CHECK(code.current("minimal")->vsn() == 1);
    CHECK_FALSE(code.old("minimal"));
    CHECK(hotswap::call(a, Get{}).value() == 5 + sent);  // what was sent meanwhile handled: then the sys requests
    CHECK(hotswap::call(b, Get{}).value() == 9 + sent);
    CHECK(sys::get_status(a).value().implementation == "testing::CounterV1");
    CHECK(sys::get_status(c).value().vsn == 1);
    CHECK(sys::get_state<testing::v1::Count>(a).value().count == 5 + sent);
    CHECK(sys::get_state<testing::v1::Count>(b).value().count == 9 + sent);
    CHECK(sys::get_state<int>(c).value() == 1);
    CHECK(hotswap::call(c, Ping{}).value() == 1);
    const auto known = releases.which_releases();
    REQUIRE(known.size() == 1);
    CHECK(known[0].vsn == "1");
    CHECK(known[0].status == hotswap::release_status::permanent);
  }
};

inline std::string what(const hotswap::upgrade_report& report) {
  return report ? std::string("done") : report.outcome.error().what;
}

}  // namespace testing
