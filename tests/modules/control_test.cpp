// The control socket, driven by a raw client as hotswapctl drives it: every command on release
// "shop", and abuse (malformed, oversized, unfinished and slow requests, clients that do not
// read, too many connections), each leaving the program serving with its state.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <hotswap/control.hpp>

#include "../line_client.hpp"
#include "shop.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using testing::running_release;

namespace {

/// A connection to a control socket, asking JSON requests.
struct client : testing::line_client {
  using line_client::line_client;
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

TEST_CASE("a socket directory below one others can write, or a link, is refused; the one opened is the one checked") {
  running_release shop;
  const std::string open_above = shop.files.dir + "/open";
  REQUIRE(::mkdir(open_above.c_str(), 0777) == 0);
  REQUIRE(::chmod(open_above.c_str(), 0777) == 0);
  const auto refused =
      hotswap::open_control(shop.code, shop.releases, {.program = "shop", .directory = open_above + "/control"});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::bad_control);
  CHECK(refused.error().what ==
        open_above + ", above " + open_above + "/control, is writable by every user (mode 777): refused");
  REQUIRE(::chmod(open_above.c_str(), 01777) == 0);  // sticky, as /tmp: nobody else can replace what is in it
  CHECK(hotswap::open_control(shop.code, shop.releases, {.program = "shop", .directory = open_above + "/control"}));

  const std::string real = shop.files.dir + "/real", link = shop.files.dir + "/link";
  REQUIRE(::mkdir(real.c_str(), 0700) == 0);
  REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
  const auto through_link = hotswap::open_control(shop.code, shop.releases, {.program = "shop", .directory = link});
  REQUIRE_FALSE(through_link);
  CHECK(through_link.error().what == link + " is not a directory (a link or a file): refused");

  // What the listener binds in: the directory checked, opened (0711 when shared).
  auto opened = hotswap::detail::open_socket_directory(real, true);
  REQUIRE(opened);
  CHECK(opened->path() == real);
  struct stat by_fd {
  }, by_path{};
  REQUIRE(::fstat(opened->fd(), &by_fd) == 0);
  REQUIRE(::stat(real.c_str(), &by_path) == 0);
  CHECK((by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev));
  CHECK((by_path.st_mode & 0777) == 0711);
  // hotswapctl's check makes nothing.
  const std::string missing = shop.files.dir + "/missing";
  CHECK(hotswap::detail::check_socket_directory(missing).error().code == hotswap::errc::no_file);
  CHECK(::access(missing.c_str(), F_OK) != 0);
  CHECK(hotswap::detail::check_socket_directory(real));
}

TEST_CASE("a client of another uid is refused before a byte is read, unless the program allows its uid") {
  if (::geteuid() != 0) {
    WARN("not root: no other uid to connect as (CI runs this as root)");
    return;
  }
  // The real hotswapctl, run as nobody (uid and gid 65534): its exit status says what it got.
  auto as_nobody = [](const std::string& socket) {
    const int status =
        std::system(fmt::format("setpriv --reuid=65534 --regid=65534 --clear-groups {} -s {} releases >/dev/null 2>&1",
                                HOTSWAPCTL, socket)
                        .c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  SECTION("by default the directory keeps it out") {
    controlled_shop shop;
    CHECK(as_nobody(shop.control.path()) == 3);  // no program: the socket cannot be reached
    CHECK_FALSE(shop.was_logged("control: refused"));
  }
  SECTION("with other uids allowed, the socket is reached and the peer check refuses it, logged") {
    controlled_shop shop({.operator_uids = {65533}});
    REQUIRE(::chmod(shop.files.dir.c_str(), 0711) == 0);  // the test's own directory above the socket's
    struct stat seen {};
    REQUIRE(::stat((shop.files.dir + "/control").c_str(), &seen) == 0);
    CHECK((seen.st_mode & 0777) == 0711);
    CHECK(as_nobody(shop.control.path()) == 3);  // closed before its reply
    CHECK(shop.was_logged("control: refused a connection from uid 65534"));
  }
  SECTION("an allowed uid is served") {
    controlled_shop shop({.operator_uids = {65534}});
    REQUIRE(::chmod(shop.files.dir.c_str(), 0711) == 0);
    CHECK(as_nobody(shop.control.path()) == 0);
  }
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
  // In its grace period (control_options::grace_period, a minute by default) the versions before
  // stay loaded: make-permanent purges them.
  CHECK(stages == std::vector<std::string>{"load", "load", "suspend", "change_code", "change_code", "change_code",
                                           "commit", "resume"});
  const json& done = lines.back();
  REQUIRE(done["ok"] == true);
  CHECK(done["result"]["steps"].size() == 3);
  CHECK(done["result"]["steps"][0]["state_bytes"] == sizeof(testing::v2::Count));
  CHECK(hotswap::call(shop.a, testing::Get{}).value() == 5);
  CHECK(hotswap::sys::get_status(shop.a).value().implementation == "testing::CounterV2");
  const json releases = operator_.reply({{"command", "releases"}});
  CHECK(releases["result"]["releases"][1]["status"] == "current");
  CHECK(shop.code.old("counter"));
  CHECK(operator_.reply({{"command", "make-permanent"}})["ok"] == true);
  CHECK_FALSE(shop.code.old("counter"));
  CHECK_FALSE(shop.code.old("minimal"));
  CHECK(operator_.reply({{"command", "rollback"}})["error"]["code"] == "no_release");
  const json downgrade =
      operator_.reply({{"command", "downgrade"}, {"release", shop.manifest("3", {"counter_v3", "minimal_v2"})}});
  CHECK(downgrade["error"]["code"] == "bad_request");
  CHECK(downgrade["error"]["message"] ==
        "release shop 3 is no downgrade: counter goes up from vsn 2 to 3 (upgrade it)");
}

TEST_CASE("remove-release forgets an old release from outside; the permanent one, or one not known, is refused") {
  controlled_shop shop;
  client operator_(shop.control.path());
  REQUIRE(operator_.reply(
              {{"command", "upgrade"}, {"release", shop.manifest("2", {"counter_v2", "minimal_v2"})}})["ok"] == true);
  REQUIRE(operator_.reply({{"command", "make-permanent"}})["ok"] == true);
  const json permanent = operator_.reply({{"command", "remove-release"}, {"name", "shop"}, {"vsn", "2"}});
  CHECK(permanent["error"]["code"] == "no_release");
  CHECK(permanent["error"]["message"] ==
        "release shop 2 is permanent: the program boots it, so it is kept (make another release permanent first)");
  CHECK(operator_.reply({{"command", "remove-release"}, {"name", "shop"}})["error"]["message"] ==
        "remove-release needs \"vsn\"");
  const json removed = operator_.reply({{"command", "remove-release"}, {"name", "shop"}, {"vsn", "1"}});
  REQUIRE(removed["ok"] == true);
  CHECK(removed["result"]["removed"] == json::array());
  CHECK(removed["result"]["text"].get<std::string>().starts_with("removed release shop 1\n"));
  const json releases = operator_.reply({{"command", "releases"}});
  REQUIRE(releases["result"]["releases"].size() == 1);
  CHECK(releases["result"]["releases"][0]["vsn"] == "2");
  CHECK(operator_.reply({{"command", "remove-release"}, {"name", "shop"}, {"vsn", "1"}})["error"]["message"] ==
        "release shop 1 is not known (known: shop 2)");
}

TEST_CASE("hotswapctl unpack puts a release archive in place, upgrade installs it, remove-release deletes it") {
  running_release shop;  // (its files)
  hotswap::code_server code;
  const std::string directory = shop.files.dir + "/releases";
  hotswap::release_handler releases(code, {.directory = directory});
  REQUIRE(releases.boot(shop.manifest("1", {"counter_v1", "minimal"})));
  hotswap::control_options options;
  options.program = "unpacking";
  options.directory = shop.files.dir + "/control";
  auto control = hotswap::open_control(code, releases, options).value();
  // Run from the directory of the archive hotswap_add_release_archive made: hotswapctl makes its path absolute.
  const auto ctl = [&](const std::string& arguments) {
    const int status = std::system(fmt::format("cd {} && {} -s {} {} >{}/out 2>&1", HOTSWAP_TEST_MODULE_DIR, HOTSWAPCTL,
                                               control.path(), arguments, shop.files.dir)
                                       .c_str());
    return std::pair{WIFEXITED(status) ? WEXITSTATUS(status) : -1, testing::read_bytes(shop.files.dir + "/out")};
  };
  const std::string own = directory + "/unpacked/counters-2", manifest = own + "/counters-2.release.json";
  auto [status, out] = ctl("unpack counters-2.release.tar");
  CHECK(status == 0);
  CHECK_THAT(out, Catch::Contains("unpacked release counters 2: " + manifest));
  std::tie(status, out) = ctl("releases");
  CHECK_THAT(out, Catch::Matches("(.|\\n)*counters +2 +unpacked(.|\\n)*"));
  std::tie(status, out) = ctl("unpack counters-2.release.tar");
  CHECK(status == 1);
  CHECK_THAT(out, Catch::Contains("bad_release " + std::string(HOTSWAP_TEST_MODULE_DIR) +
                                  "/counters-2.release.tar: release counters 2 is known already"));
  std::tie(status, out) = ctl("unpack counters-2.release.json");  // not an archive
  CHECK(status == 1);
  CHECK_THAT(out, Catch::Contains("not a release archive (a tar file, gzip'd or not)"));

  std::tie(status, out) = ctl("upgrade " + manifest);
  CHECK(status == 0);
  CHECK(code.current("counter")->vsn() == 2);
  std::tie(status, out) = ctl("remove-release counters 2");
  CHECK(status == 1);
  CHECK_THAT(out,
             Catch::Contains("no_release release counters 2 is current: it runs (make-permanent or rollback first)"));
  std::tie(status, out) = ctl("rollback");
  CHECK(status == 0);
  std::tie(status, out) = ctl("remove-release counters 2");
  CHECK(status == 0);
  CHECK_THAT(out, Catch::Contains("removed release counters 2\n  deleted " + own + "/counter_v2.so\n"));
  struct stat gone {};
  CHECK(::stat(own.c_str(), &gone) != 0);
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

namespace observed {

// A server of the program's own whose state inspect prints (its schemas: a map of numbers).
using Tally = hotswap::interface<"Tally", hotswap::cast_msg<testing::Add>>;
struct TallyV1 {
  using interface = Tally;
  static constexpr int vsn = 1;
  using state = std::map<std::string, int>;
  static state init() { return {{"a", 1}, {"b", 2}}; }
  static void handle_cast(const testing::Add& add, state& s) { s["a"] += add.n; }
};

}  // namespace observed
using observed::TallyV1;

TEST_CASE("tree, state, stats and top look at the servers, each named by its registered name or its id") {
  controlled_shop shop;
  client operator_(shop.control.path());
  auto root = hotswap::start_supervisor({}, {hotswap::child<TallyV1>("tally")}, {.name = "root"}).value();
  const auto children = hotswap::call(root, hotswap::which_children{}).value();
  const std::uint64_t tally = children.at(0).server.id();

  const json tree = operator_.reply({{"command", "tree"}})["result"];
  json supervisor;
  for (const auto& one : tree["roots"]) {
    CHECK(one["id"] != tally);  // a supervised server is under its supervisor, not a root
    if (one["id"] == root.id()) supervisor = one;
  }
  REQUIRE(supervisor.is_object());
  CHECK(supervisor["name"] == "root");
  REQUIRE(supervisor["children"].size() == 1);
  CHECK(supervisor["children"][0]["child"] == "tally");
  CHECK(supervisor["children"][0]["id"] == tally);
  CHECK(supervisor["children"][0]["implementation"] == "observed::TallyV1");
  CHECK(tree["text"].get<std::string>().find("\n  tally: server " + std::to_string(tally) +
                                             "  observed::TallyV1 vsn 1\n") != std::string::npos);

  const json state = operator_.reply({{"command", "state"}, {"server", std::to_string(tally)}});
  REQUIRE(state["ok"] == true);
  CHECK(state["result"]["inspect"] == R"(%{"a" => 1, "b" => 2})");
  CHECK(state["result"]["vsn"] == 1);
  const json opaque = operator_.reply({{"command", "state"}, {"server", std::to_string(shop.a.id())}});
  CHECK(opaque["result"]["bytes"] == sizeof(testing::v1::Count));
  CHECK_FALSE(opaque["result"].contains("inspect"));
  CHECK(opaque["result"]["text"].get<std::string>().find("its schemas do not enable inspect") != std::string::npos);
  CHECK(operator_.reply({{"command", "state"}, {"server", "nobody"}})["error"]["message"] ==
        "no server is named or numbered nobody");

  const json stats = operator_.reply({{"command", "stats"}, {"server", "root"}, {"timing", true}});
  REQUIRE(stats["ok"] == true);
  CHECK(stats["result"]["timing"] == true);
  CHECK(stats["result"]["id"] == root.id());
  CHECK(hotswap::sys::statistics(root).value().timing);

  const json top = operator_.reply({{"command", "top"}})["result"];
  CHECK(top["servers"].size() >= 5);  // the shop's three, the supervisor and its child
  for (const auto& one : top["servers"])
    if (one["id"] == shop.a.id()) CHECK(one["handled"] == 2);
  CHECK(top["at_us"].get<double>() > 0);
  REQUIRE(hotswap::stop(root));
  shop.check_release_1_runs();
}

TEST_CASE("tree shows a dynamic supervisor's children under it") {
  controlled_shop shop;
  client operator_(shop.control.path());
  auto pool = hotswap::start_dynamic_supervisor({}, {.name = "pool"}).value();
  const auto child = hotswap::start_child(pool, hotswap::child<TallyV1>("tally")).value();
  const json tree = operator_.reply({{"command", "tree"}})["result"];
  json supervisor;
  for (const auto& one : tree["roots"]) {
    CHECK(one["id"] != child.id());
    if (one["id"] == pool.id()) supervisor = one;
  }
  REQUIRE(supervisor.is_object());
  REQUIRE(supervisor["children"].size() == 1);
  CHECK(supervisor["children"][0]["id"] == child.id());
  REQUIRE(hotswap::stop(pool));
  shop.check_release_1_runs();
}

TEST_CASE("status and tree show a supervised server's restarts and last exit; its log outlives its crash") {
  controlled_shop shop;
  client operator_(shop.control.path());
  auto root =
      hotswap::start_supervisor({.intensity = 5}, {hotswap::child<testing::CounterV1>("counter", {.name = "watched"})},
                                {.name = "root"})
          .value();
  const auto first = hotswap::whereis<testing::Counter>("watched").value();
  REQUIRE(operator_.reply({{"command", "log"}, {"server", "watched"}, {"enable", true}})["result"]["logging"] == true);
  hotswap::cast(first, testing::Add{2});
  hotswap::send(first, testing::Crash{});
  REQUIRE(testing::eventually([&] {
    const auto now = hotswap::whereis<testing::Counter>("watched");
    return now && now->id() != first.id();
  }));
  const auto second = hotswap::whereis<testing::Counter>("watched").value();

  const json status = operator_.reply({{"command", "status"}});
  json listed;
  for (const auto& one : status["result"]["servers"])
    if (one["id"] == second.id()) listed = one;
  REQUIRE(listed.is_object());
  CHECK(listed["restarts"] == 1);
  CHECK(listed["last_exit"] == json{{"kind", "crashed"}, {"what", "asked to crash"}});
  const std::string status_text = status["result"]["text"];
  CHECK(status_text.find("ids of its servers") != std::string::npos);
  CHECK(status_text.find("        1  crashed: asked to crash\n") != std::string::npos);
  const json tree = operator_.reply({{"command", "tree"}})["result"];
  CHECK(tree["text"].get<std::string>().find("  counter: server " + std::to_string(second.id()) +
                                             " (watched)  testing::CounterV1 vsn 1  (restarts 1, last exit crashed: "
                                             "asked to crash)\n") != std::string::npos);

  // The log of the server that crashed: what it was sent, up to the message whose handler threw.
  const json log = operator_.reply({{"command", "log"}, {"server", "watched"}})["result"];
  CHECK(log["logging"] == false);
  CHECK(log["ended"]["id"] == first.id());
  CHECK(log["ended"]["exit"]["kind"] == "crashed");
  REQUIRE(log["events"].size() == 4);
  CHECK(log["events"][2]["message"] == "testing::Crash");
  CHECK(log["events"][3]["way"] == "failed");
  CHECK(log["events"][3]["why"] == "asked to crash");
  const std::string text = log["text"];
  CHECK(
      text.starts_with("server " + std::to_string(first.id()) +
                       " (watched) ended, crashed: asked to crash; the last 4 events its log kept (ms before now):\n"));
  CHECK(text.ends_with("(server " + std::to_string(second.id()) +
                       ", named watched now, is not logged: log watched --enable on)\n"));
  REQUIRE(hotswap::stop(root));
  // No server is named so now: the log kept is found all the same, by name or by id.
  CHECK(operator_.reply({{"command", "log"}, {"server", "watched"}})["result"]["ended"]["id"] == first.id());
  CHECK(operator_.reply({{"command", "log"}, {"server", std::to_string(first.id())}})["ok"] == true);
  CHECK(operator_.reply({{"command", "log"}, {"server", "nobody"}})["error"]["code"] == "no_server");
  shop.check_release_1_runs();
}

TEST_CASE("a server's log keeps its last events while it is on; a trace streams the next ones, rate-limited") {
  controlled_shop shop({.log_size = 4, .trace_rate = 5});
  client operator_(shop.control.path());
  const std::string a = std::to_string(shop.a.id());
  CHECK(operator_.reply({{"command", "log"}, {"server", a}})["result"]["logging"] == false);
  CHECK(operator_.reply({{"command", "log"}, {"server", a}, {"enable", true}})["result"]["logging"] == true);
  for (int i = 0; i < 3; ++i) hotswap::cast(shop.a, testing::Add{1});
  REQUIRE(hotswap::call(shop.a, testing::Get{}).value() == 8);
  REQUIRE(hotswap::sys::get_status(shop.a));  // after the Get's "out" (a sys request runs between messages)
  const json logged = operator_.reply({{"command", "log"}, {"server", a}})["result"];
  REQUIRE(logged["events"].size() == 4);  // the last 4 of 8
  CHECK(logged["events"][0]["way"] == "in");
  CHECK(logged["events"][0]["message"] == "testing::Add");
  CHECK(logged["events"][3]["way"] == "out");
  CHECK(logged["events"][3]["message"] == "testing::Get");
  CHECK(operator_.reply({{"command", "log"}, {"server", a}, {"enable", false}})["result"]["events"].empty());

  // A trace streams: the connection's trace runs while other clients are served.
  client tracer(shop.control.path());
  tracer.send(json{{"command", "trace"}, {"server", a}, {"count", 6}}.dump() + "\n");
  CHECK(json::parse(tracer.line())["event"] == "tracing");          // hooked
  CHECK(operator_.reply({{"command", "releases"}})["ok"] == true);  // served while the trace waits
  // 200 events at once: the first 5 are sent (a burst of a second's worth), the rest dropped;
  // the 6th is the first that comes once the rate allows, so Adds go on until the trace ends.
  int adds = 100;
  for (int i = 0; i < 100; ++i) hotswap::cast(shop.a, testing::Add{1});
  std::vector<json> lines;
  for (;;) {
    pollfd waiting{tracer.fd, POLLIN, 0};
    if (tracer.pending.find('\n') == std::string::npos && ::poll(&waiting, 1, 10) == 0) {
      hotswap::cast(shop.a, testing::Add{1});
      ++adds;
      continue;
    }
    lines.push_back(json::parse(tracer.line()));
    if (lines.back().contains("ok")) break;
  }
  REQUIRE(lines.size() == 7);
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(lines[i]["event"] == "trace");
    CHECK(lines[i]["server"] == shop.a.id());
    CHECK(lines[i]["message"] == "testing::Add");
  }
  CHECK(lines[0]["way"] == "in");
  CHECK(lines[6]["result"]["traced"] == 6);
  CHECK(lines[6]["result"]["dropped"].get<int>() >= 190);
  CHECK(hotswap::call(shop.a, testing::Get{}).value() == 5 + 3 + adds);  // traced or not, every message handled

  // A trace of a server that ends meanwhile ends with it.
  auto tally = hotswap::start<TallyV1>().value();
  tracer.send(json{{"command", "trace"}, {"server", std::to_string(tally.id())}, {"count", 100}}.dump() + "\n");
  CHECK(json::parse(tracer.line())["event"] == "tracing");
  REQUIRE(hotswap::stop(tally));
  const json ended = json::parse(tracer.line());
  CHECK(ended["result"]["ended"] == true);
  CHECK(ended["result"]["traced"] == 0);
  CHECK(hotswap::call(shop.b, testing::Get{}).value() == 9);
}

TEST_CASE("the program's own trace hook on a server is put back once a log or trace from outside ends") {
  controlled_shop shop;
  std::atomic<int> own{0};  // messages in, as the program's hook saw them (on the server's thread)
  REQUIRE(hotswap::sys::trace(shop.b, [&own](const hotswap::trace_event& event) {
    if (event.way == hotswap::trace_event::in) ++own;
  }));
  REQUIRE(hotswap::call(shop.b, testing::Get{}));
  REQUIRE(own.load() == 1);
  client operator_(shop.control.path());
  const std::string b = std::to_string(shop.b.id());

  // A log, on then off: the program's hook is replaced meanwhile, then back.
  CHECK(operator_.reply({{"command", "log"}, {"server", b}, {"enable", true}})["result"]["logging"] == true);
  REQUIRE(hotswap::call(shop.b, testing::Get{}));
  CHECK(own.load() == 1);
  CHECK(operator_.reply({{"command", "log"}, {"server", b}, {"enable", false}})["ok"] == true);
  REQUIRE(hotswap::call(shop.b, testing::Get{}));
  CHECK(own.load() == 2);

  // A trace of one message: once it has ended (the listener drops it after its last line), back.
  client tracer(shop.control.path());
  tracer.send(json{{"command", "trace"}, {"server", b}, {"count", 1}}.dump() + "\n");
  CHECK(json::parse(tracer.line())["event"] == "tracing");
  hotswap::cast(shop.b, testing::Add{1});
  CHECK(json::parse(tracer.line())["event"] == "trace");
  CHECK(json::parse(tracer.line())["result"]["traced"] == 1);
  CHECK(own.load() == 2);
  CHECK(testing::eventually([&] { return hotswap::call(shop.b, testing::Get{}).value() > 0 && own > 2; }));

  // A hook the program sets while the server is watched stays once the watch ends, and the one it
  // replaced never runs again: not even for a message handled while the watch lets go.
  CHECK(operator_.reply({{"command", "log"}, {"server", b}, {"enable", true}})["ok"] == true);
  std::atomic<int> second{0};
  REQUIRE(hotswap::sys::trace(shop.b, [&second](const hotswap::trace_event& event) {
    if (event.way == hotswap::trace_event::in) ++second;
  }));
  const int own_before = own.load();
  std::atomic<bool> off{false};
  std::atomic<int> sent{0};
  hotswap::detail::thread producer([&] {  // messages handled while the log goes off
    for (; !off; ++sent) hotswap::cast(shop.b, testing::Add{0});
  });
  REQUIRE(testing::eventually([&] { return second > 100; }));
  CHECK(operator_.reply({{"command", "log"}, {"server", b}, {"enable", false}})["ok"] == true);
  off = true;
  producer.join();
  REQUIRE(hotswap::call(shop.b, testing::Get{}));
  CHECK(own.load() == own_before);
  CHECK(second.load() == sent + 1);
  CHECK(hotswap::sys::trace(shop.b, nullptr));
}

TEST_CASE("watch streams a line for each module file the build writes, reloaded or refused, until the client goes") {
  controlled_shop shop;
  const std::string watched = shop.files.dir + "/build";
  REQUIRE(::mkdir(watched.c_str(), 0700) == 0);
  client developer(shop.control.path());
  developer.send(json{{"command", "watch"}, {"directory", watched}}.dump() + "\n");
  const json started = json::parse(developer.line());
  CHECK(started["event"] == "watching");
  CHECK(started["text"] == "watching " + watched +
                               " for module files; only newer vsns are taken (the code server is not in development "
                               "mode)\n");
  client operator_(shop.control.path());
  CHECK(operator_.reply({{"command", "releases"}})["ok"] == true);  // served while the watch streams
  // A newer vsn of the counter, as a build writes it: both servers on it are upgraded.
  testing::write_bytes(watched + "/counter.so", testing::read_bytes(testing::built("counter_v2")));
  const json reloaded = json::parse(developer.line());
  CHECK(reloaded["event"] == "watch");
  CHECK_THAT(reloaded["text"].get<std::string>(),
             Catch::Matches("reloaded counter vsn 1 -> 2 \\(build [0-9a-f]{8} -> [0-9a-f]{8}\\): 2 servers upgraded "
                            "in \\d+ us \\(server \\d+, server \\d+\\); load \\d+\\.\\d ms\n"));
  CHECK(hotswap::sys::get_status(shop.a).value().vsn == 2);
  CHECK(hotswap::call(shop.b, testing::Get{}).value() == 9);
  // Another build of vsn 2: this code server is not in development mode.
  testing::write_bytes(watched + "/rebuilt.so", testing::read_bytes(testing::built("counter_v2_rebuilt")));
  const json refused = json::parse(developer.line());
  CHECK_THAT(refused["text"].get<std::string>(),
             Catch::StartsWith("refused " + watched +
                               "/rebuilt.so: counter vsn 2 is not newer than the current vsn 2 "
                               "(another build of it: a code server in development mode takes that); the old code "
                               "serves on"));
  CHECK(hotswap::call(shop.b, testing::Get{}).value() == 9);
}

TEST_CASE("a trace or watch client that goes while its reply streams ends its stream; the program serves on") {
  controlled_shop shop;
  client operator_(shop.control.path());
  // Whether the listener has closed `gone`'s connection (its reading side shut, the client can
  // only tell by writing).
  auto closed = [](const client& gone) {
    return ::send(gone.fd, " ", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE;
  };
  SECTION("a trace, its client shutting its reading side after the first line (hotswapctl trace | head -1)") {
    client tracer(shop.control.path());
    tracer.send(json{{"command", "trace"}, {"server", std::to_string(shop.a.id())}, {"count", 1000000}}.dump() + "\n");
    CHECK(json::parse(tracer.line())["event"] == "tracing");
    hotswap::cast(shop.a, testing::Add{1});
    CHECK(json::parse(tracer.line())["event"] == "trace");
    ::shutdown(tracer.fd, SHUT_RD);
    REQUIRE(testing::eventually([&] {
      hotswap::cast(shop.a, testing::Add{1});  // more lines for the trace to send, and fail to
      return closed(tracer);
    }));
  }
  SECTION("a watch, its client shutting its reading side after the first line") {
    const std::string watched = shop.files.dir + "/build";
    REQUIRE(::mkdir(watched.c_str(), 0700) == 0);
    client developer(shop.control.path());
    developer.send(json{{"command", "watch"}, {"directory", watched}}.dump() + "\n");
    CHECK(json::parse(developer.line())["event"] == "watching");
    ::shutdown(developer.fd, SHUT_RD);
    testing::write_bytes(watched + "/counter.so", testing::read_bytes(testing::built("counter_v2")));
    REQUIRE(testing::eventually([&] { return closed(developer); }));
  }
  CHECK(operator_.reply({{"command", "status"}})["ok"] == true);
  CHECK(hotswap::call(shop.b, testing::Get{}).value() == 9);
}

TEST_CASE("a viewer uid sees how the program runs and may not change it") {
  if (::geteuid() != 0) {
    WARN("not root: no other uid to connect as (CI runs this as root)");
    return;
  }
  controlled_shop shop({.viewer_uids = {65534}});
  REQUIRE(::chmod(shop.files.dir.c_str(), 0711) == 0);
  auto as_nobody = [&](const std::string& command) {
    const int status =
        std::system(fmt::format("setpriv --reuid=65534 --regid=65534 --clear-groups {} -s {} {} >{}/out 2>&1",
                                HOTSWAPCTL, shop.control.path(), command, shop.files.dir)
                        .c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  CHECK(as_nobody("releases") == 0);
  CHECK(as_nobody("status") == 0);
  CHECK(as_nobody("make-permanent") == 1);
  CHECK_THAT(testing::read_bytes(shop.files.dir + "/out"),
             Catch::Contains("not_permitted uid 65534 may view, not operate: make-permanent needs an operator"));
  CHECK(as_nobody(fmt::format("state {}", shop.a.id())) == 1);
  CHECK(as_nobody(fmt::format("stats {} --timing on", shop.a.id())) == 1);
  CHECK(as_nobody(fmt::format("stats {}", shop.a.id())) == 0);
  shop.check_release_1_runs();
}
