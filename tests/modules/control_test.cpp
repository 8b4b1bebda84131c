// The control socket, driven by a raw client as hotswapctl drives it: every command on release
// "shop", and abuse (malformed, oversized, unfinished and slow requests, clients that do not
// read, too many connections), each leaving the program serving with its state.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <hotswap/control.hpp>

#include "shop.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using testing::running_release;

namespace {

/// A connection to a control socket.
struct client {
  int fd = -1;
  std::string pending;

  explicit client(const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  }
  ~client() { ::close(fd); }

  void send(const std::string& bytes) const {
    for (std::size_t sent = 0; sent < bytes.size();) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;  // cut off: what follows shows it
      sent += static_cast<std::size_t>(n);
    }
  }
  /// The next line, or "" once the program closed the connection.
  std::string line() {
    for (;;) {
      if (const auto end = pending.find('\n'); end != std::string::npos) {
        std::string one = pending.substr(0, end);
        pending.erase(0, end + 1);
        return one;
      }
      char chunk[4096];
      const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
      if (got <= 0) return {};
      pending.append(chunk, static_cast<std::size_t>(got));
    }
  }
  /// Sends `request`; returns its progress lines and, last, its reply.
  std::vector<json> ask(const json& request) {
    send(request.dump() + "\n");
    std::vector<json> lines;
    for (;;) {
      const std::string one = line();
      REQUIRE(!one.empty());
      lines.push_back(json::parse(one));
      if (lines.back().contains("ok")) return lines;
    }
  }
  json reply(const json& request) { return ask(request).back(); }
};

struct controlled_shop : running_release {
  std::mutex lock;
  std::vector<std::string> logged;
  hotswap::control_socket control;

  explicit controlled_shop(hotswap::control_options options = {})
      : control(hotswap::open_control(code, releases, with_defaults(std::move(options))).value()) {}

  hotswap::control_options with_defaults(hotswap::control_options options) {
    options.program = "shop";
    options.directory = files.dir + "/control";
    options.log = [this](const std::string& line) {
      const std::lock_guard hold(lock);
      logged.push_back(line);
    };
    return options;
  }
  bool was_logged(const std::string& start) {
    const std::lock_guard hold(lock);
    for (const auto& line : logged)
      if (line.starts_with(start)) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("the control socket is the program's user's alone, and goes with the program") {
  std::string path;
  {
    controlled_shop shop;
    path = shop.control.path();
    CHECK(path == shop.files.dir + "/control/shop." + std::to_string(::getpid()) + ".sock");
    struct stat seen {};
    REQUIRE(::stat(path.c_str(), &seen) == 0);
    CHECK(S_ISSOCK(seen.st_mode));
    CHECK((seen.st_mode & 0777) == 0600);
    REQUIRE(::stat((shop.files.dir + "/control").c_str(), &seen) == 0);
    CHECK((seen.st_mode & 0777) == 0700);
  }
  CHECK(::access(path.c_str(), F_OK) != 0);  // removed

  running_release shop;
  const std::string open_dir = shop.files.dir + "/open";
  REQUIRE(::mkdir(open_dir.c_str(), 0755) == 0);
  REQUIRE(::chmod(open_dir.c_str(), 0755) == 0);
  const auto refused = hotswap::open_control(shop.code, shop.releases, {.program = "shop", .directory = open_dir});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::bad_control);
  CHECK(refused.error().what == open_dir + " is open to other users (mode 755): refused");
}

TEST_CASE("status shows the release, the modules with the servers on each, and every server") {
  controlled_shop shop;
  client operator_(shop.control.path());
  const json status = operator_.reply({{"command", "status"}});
  REQUIRE(status["ok"] == true);
  const json& result = status["result"];
  CHECK(result["program"] == "shop");
  CHECK(result["release"]["name"] == "shop");
  CHECK(result["release"]["vsn"] == "1");
  REQUIRE(result["modules"].size() == 2);
  CHECK(result["modules"][0]["name"] == "counter");
  CHECK(result["modules"][0]["current"] == 1);
  CHECK(result["modules"][0]["servers_current"] == json::array({shop.a.id(), shop.b.id()}));
  json listed;
  for (const auto& server : result["servers"])
    if (server["id"] == shop.a.id()) listed = server;
  REQUIRE(listed.is_object());
  CHECK(listed["implementation"] == "testing::CounterV1");
  CHECK(listed["interface"] == "Counter");
  CHECK(listed["vsn"] == 1);
  CHECK(listed["suspended"] == false);
  CHECK(listed["handled"] == 2);  // the Add and the Get
  CHECK(result["text"].get<std::string>().starts_with("shop (pid "));
}

TEST_CASE("an upgrade from outside streams its steps, then its report; the release runs") {
  controlled_shop shop;
  client operator_(shop.control.path());
  const std::string target = shop.manifest("2", {"counter_v2", "minimal_v2"});
  const json plan = operator_.reply({{"command", "plan"}, {"release", target}});
  REQUIRE(plan["ok"] == true);
  CHECK(plan["result"]["changes"].size() == 2);
  CHECK(plan["result"]["text"].get<std::string>().starts_with("release shop 1 -> shop 2\n"));

  const auto lines = operator_.ask({{"command", "upgrade"}, {"release", target}});
  std::vector<std::string> stages;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) stages.push_back(lines[i]["stage"]);
  CHECK(stages == std::vector<std::string>{"load", "load", "suspend", "change_code", "change_code", "change_code",
                                           "commit", "resume", "purge", "purge"});
  const json& done = lines.back();
  REQUIRE(done["ok"] == true);
  CHECK(done["result"]["steps"].size() == 3);
  CHECK(done["result"]["steps"][0]["state_bytes"] == sizeof(testing::v2::Count));
  CHECK(hotswap::call(shop.a, testing::Get{}).value() == 5);
  CHECK(hotswap::sys::get_status(shop.a).value().implementation == "testing::CounterV2");
  const json releases = operator_.reply({{"command", "releases"}});
  CHECK(releases["result"]["releases"][1]["status"] == "current");
  CHECK(operator_.reply({{"command", "make-permanent"}})["ok"] == true);
  CHECK(operator_.reply({{"command", "rollback"}})["error"]["code"] == "no_release");
  const json downgrade =
      operator_.reply({{"command", "downgrade"}, {"release", shop.manifest("3", {"counter_v3", "minimal_v2"})}});
  CHECK(downgrade["error"]["code"] == "bad_request");
  CHECK(downgrade["error"]["message"] ==
        "release shop 3 is no downgrade: counter goes up from vsn 2 to 3 (upgrade it)");
}

TEST_CASE("a refused or failing upgrade from outside leaves the release running as it was") {
  controlled_shop shop;
  client operator_(shop.control.path());
  const json refused = operator_.reply({{"command", "upgrade"}, {"release", shop.files.dir + "/missing.json"}});
  CHECK(refused["ok"] == false);
  CHECK(refused["error"]["code"] == "bad_release");
  const json failed =
      operator_.reply({{"command", "upgrade"}, {"release", shop.manifest("2", {"counter_v2", "minimal_v2_refuses"})}});
  CHECK(failed["ok"] == false);
  CHECK(failed["error"]["code"] == "code_change_failed");
  CHECK(failed["result"]["steps"].size() == 3);  // the report says where it failed
  const json bad_load = operator_.reply({{"command", "load"}, {"file", shop.files.dir + "/nothing.so"}});
  CHECK(bad_load["error"]["code"] == "no_file");
  CHECK(operator_.reply({{"command", "purge"}, {"module", "counter"}})["result"]["vsn"] == 0);
  shop.check_release_1_runs();
}

TEST_CASE("malformed, unknown and oversized requests get an error; the connection and the program go on") {
  controlled_shop shop;
  client operator_(shop.control.path());
  auto error_for = [&](const std::string& line) {
    operator_.send(line + "\n");
    const json reply = json::parse(operator_.line());
    CHECK(reply["ok"] == false);
    return reply["error"]["message"].get<std::string>();
  };
  CHECK(error_for("{\"command\": ") == "not JSON: a request is one JSON object on one line");
  CHECK(error_for("[1, 2]") == "not a JSON object: a request is {\"command\": ...}");
  CHECK(error_for("{\"verb\": \"status\"}") == "no \"command\" string in the request");
  CHECK(error_for("{\"command\": 7}") == "no \"command\" string in the request");
  CHECK(error_for("{\"command\": \"reboot\"}").starts_with("unknown command \"reboot\" (commands: status, "));
  CHECK(error_for("{\"command\": \"upgrade\"}") == "upgrade needs \"release\"");
  CHECK(error_for("{\"command\": \"upgrade\", \"release\": 3}") == "\"release\" must be a non-empty string");
  CHECK(error_for("{\"command\": \"status\", \"release\": \"x\"}") == "status takes no \"release\"");
  CHECK(error_for("{\"command\": \"purge\", \"module\": \"m\", \"force\": \"yes\"}") ==
        "\"force\" must be true or false");
  CHECK(error_for("{\"command\": \"\xff\"}") == "not JSON: a request is one JSON object on one line");  // not UTF-8
  CHECK(error_for(R"({"command": "re\u0001boot"})").starts_with("unknown command \"re\u0001boot\""));
  CHECK(operator_.reply({{"command", "status"}})["ok"] == true);  // the same connection still serves

  // A line over 64 KiB: an error, and the connection is closed.
  client flooding(shop.control.path());
  flooding.send(std::string(70 * 1024, 'x'));
  CHECK(json::parse(flooding.line())["error"]["message"] == "a request line is at most 65536 bytes");
  CHECK(flooding.line().empty());
  // A line without an end, then the end of input.
  client unfinished(shop.control.path());
  unfinished.send("{\"command\": \"status\"}");
  ::shutdown(unfinished.fd, SHUT_WR);
  CHECK(json::parse(unfinished.line())["error"]["message"] == "the request line has no end");
  CHECK(unfinished.line().empty());
  shop.check_release_1_runs();
}

TEST_CASE("slow clients, clients that do not read and too many clients are cut off; the others are served") {
  controlled_shop shop({.max_connections = 3, .max_pending = 64 * 1024, .deadline = 2s});
  client silent(shop.control.path());  // never sends: cut off at the deadline
  CHECK(silent.line().empty());
  client greedy(shop.control.path());  // asks, never reads: cut off when its replies pile up
  for (int i = 0; i < 1000; ++i) greedy.send("{\"command\": \"status\"}\n");
  REQUIRE(
      testing::eventually([&] { return shop.was_logged("control: uid " + std::to_string(::getuid()) + " cut off"); }));
  client first(shop.control.path()), second(shop.control.path()), third(shop.control.path());
  CHECK(first.reply({{"command", "releases"}})["ok"] == true);
  client fourth(shop.control.path());  // over max_connections
  const json busy = json::parse(fourth.line());
  CHECK(busy["error"]["message"] == "busy: 3 connections already");
  CHECK(fourth.line().empty());
  CHECK(third.reply({{"command", "releases"}})["ok"] == true);
  shop.check_release_1_runs();
}
