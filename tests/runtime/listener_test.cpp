// The control socket's listener on its own, behind a program of test commands: clients that go
// while their reply streams, that write in pieces or half-close, that never stop writing, that
// hold streams, and a listener out of descriptors. (Run under ASan and TSan as well.)
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <hotswap/detail/control/listener.hpp>

#include "../line_client.hpp"
#include "../wait.hpp"

namespace {

namespace detail = hotswap::detail;
using namespace std::chrono_literals;

/// What the test program saw: the requests it ran, in order, its log, and its streams' lives.
struct seen {
  std::mutex lock;
  std::condition_variable changed;
  std::vector<std::string> handled, logged;
  bool blocked = false, released = false;
  bool logger_throws = false;
  std::atomic<int> streams_destroyed{0};
  std::atomic<bool> destroyed_beneath_pump{false};

  bool was_logged(const std::string& start) {
    const std::lock_guard hold(lock);
    for (const auto& line : logged)
      if (line.starts_with(start)) return true;
    return false;
  }
  std::vector<std::string> logged_now() {
    const std::lock_guard hold(lock);
    return logged;
  }
};

/// `lines` lines, 8 a pump, then its reply; it notes whether it is destroyed inside its own pump.
class ticking_stream final : public detail::reply_stream {
 public:
  ticking_stream(std::shared_ptr<seen> saw, long lines) : saw_(std::move(saw)), left_(lines) {}
  ~ticking_stream() override {
    if (pumping_) saw_->destroyed_beneath_pump = true;
    ++saw_->streams_destroyed;
  }
  bool pump(detail::reply_lines& reply) override {
    pumping_ = true;
    for (int i = 0; i < 8 && left_ > 0; ++i, --left_) reply.line(R"({"event": "tick"})");
    const bool more = left_ > 0;
    if (!more) reply.line(R"({"ok": true})");
    pumping_ = false;
    return more;
  }

 private:
  std::shared_ptr<seen> saw_;
  long left_;
  bool pumping_ = false;
};

/// A listener in a directory of its own, serving: "echo TEXT", "stream N", "throw", "block"
/// (until released), and anything else answered "ok".
struct test_listener {
  std::string directory;
  std::shared_ptr<seen> saw = std::make_shared<seen>();
  std::unique_ptr<detail::control_listener> listener;

  explicit test_listener(detail::listener_limits limits = default_limits()) {
    char made[] = "/tmp/hotswap-listener-XXXXXX";
    REQUIRE(::mkdtemp(made));
    directory = made;
    const int fd = ::open(made, O_DIRECTORY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    auto opened = detail::control_listener::open(
        fd, "test.sock", directory + "/test.sock", std::move(limits),
        [saw = saw](std::string_view request, const detail::control_peer&, detail::reply_lines& reply) {
          const std::string line(request);
          {
            const std::lock_guard hold(saw->lock);
            saw->handled.push_back(line);
          }
          if (line == "throw") throw std::runtime_error("thrown by the handler");
          if (line.starts_with("stream "))
            return reply.follow(std::make_unique<ticking_stream>(saw, std::stol(line.substr(7))));
          if (line == "block") {
            std::unique_lock hold(saw->lock);
            saw->blocked = true;
            saw->changed.notify_all();
            saw->changed.wait(hold, [&] { return saw->released; });
          }
          reply.line(line.starts_with("echo ") ? line.substr(5) : "ok");
        },
        [saw = saw](const std::string& line) {
          const std::lock_guard hold(saw->lock);
          saw->logged.push_back(line);
          if (saw->logger_throws) throw std::runtime_error("standard error is closed");
        });
    ::close(fd);
    REQUIRE(opened);
    listener = std::move(*opened);
  }
  ~test_listener() {
    listener.reset();
    std::system(("rm -rf " + directory).c_str());
  }

  static detail::listener_limits default_limits() {
    return {.operator_uids = {},
            .viewer_uids = {},
            .max_connections = 16,
            .max_streams_per_uid = 4,
            .max_request = 1024,
            .max_pending = 1 << 20,
            .deadline = 60s};
  }
  std::string path() const { return directory + "/test.sock"; }
  std::vector<std::string> handled() {
    const std::lock_guard hold(saw->lock);
    return saw->handled;
  }
  void wait_blocked() {
    std::unique_lock hold(saw->lock);
    saw->changed.wait(hold, [&] { return saw->blocked; });
  }
  void release() {
    const std::lock_guard hold(saw->lock);
    saw->released = true;
    saw->changed.notify_all();
  }
};

using raw_client = testing::line_client;

}  // namespace

TEST_CASE("a client that goes while its reply streams stops the stream, never beneath its pump") {
  test_listener served;
  SECTION("it shuts its reading side after the first line (hotswapctl trace | head)") {
    raw_client gone(served.path());
    gone.send("stream 100000000\n");
    CHECK(gone.line() == R"({"event": "tick"})");
    ::shutdown(gone.fd, SHUT_RD);  // the listener's next write fails
    REQUIRE(testing::eventually([&] { return served.saw->streams_destroyed == 1; }));
  }
  SECTION("it closes its socket mid-stream") {
    auto gone = std::make_unique<raw_client>(served.path());
    gone->send("stream 100000000\n");
    CHECK(gone->line() == R"({"event": "tick"})");
    gone.reset();
    REQUIRE(testing::eventually([&] { return served.saw->streams_destroyed == 1; }));
  }
  SECTION("it never reads, and is cut off when its replies pile up") {
    detail::listener_limits limits = test_listener::default_limits();
    limits.max_pending = 64 * 1024;
    test_listener small(limits);
    raw_client greedy(small.path());
    greedy.send("stream 100000000\n");
    REQUIRE(testing::eventually([&] { return small.saw->streams_destroyed == 1; }));
    CHECK(small.saw->was_logged(fmt::format("control: uid {} cut off", ::geteuid())));
    CHECK_FALSE(small.saw->destroyed_beneath_pump);
  }
  CHECK_FALSE(served.saw->destroyed_beneath_pump);
  raw_client next(served.path());  // and the listener serves on
  next.send("echo still here\n");
  CHECK(next.line() == "still here");
}

TEST_CASE("a stream that completes is followed by the connection's next requests") {
  test_listener served;
  raw_client client(served.path());
  client.send("stream 20\necho after\n");
  for (int i = 0; i < 20; ++i) CHECK(client.line() == R"({"event": "tick"})");
  CHECK(client.line() == R"({"ok": true})");
  CHECK(client.line() == "after");
  CHECK(served.saw->streams_destroyed == 1);
}

TEST_CASE("requests written in pieces, half-closed connections and throwing handlers are served") {
  test_listener served;
  SECTION("a byte at a time") {
    raw_client client(served.path());
    for (const char c : std::string("echo piecemeal\n")) client.send(std::string(1, c));
    CHECK(client.line() == "piecemeal");
  }
  SECTION("the client closes its writing side after its requests: each is answered, then the end") {
    raw_client client(served.path());
    client.send("echo one\necho two\n");
    ::shutdown(client.fd, SHUT_WR);
    CHECK(client.line() == "one");
    CHECK(client.line() == "two");
    CHECK(client.line().empty());
  }
  SECTION("a handler that throws answers with an error, and the connection goes on") {
    raw_client client(served.path());
    client.send("throw\necho next\n");
    const std::string failed = client.line();
    CHECK_THAT(failed, Catch::Contains(R"("code":"request_failed")") && Catch::Contains("thrown by the handler"));
    CHECK(client.line() == "next");
  }
  SECTION("a request over the limit is refused and the connection closed") {
    raw_client client(served.path());
    client.send(std::string(2000, 'x'));
    CHECK_THAT(client.line(), Catch::Contains("a request line is at most 1024 bytes"));
    CHECK(client.line().empty());
  }
}

TEST_CASE("a client that keeps writing does not starve another: one request a connection a turn") {
  test_listener served;
  raw_client flood(served.path());
  std::string requests = "block\n";
  for (int i = 0; i < 1000; ++i) requests += "echo flood\n";
  flood.send(requests);
  served.wait_blocked();  // the flood is in the socket, the listener busy with its first request
  raw_client other(served.path());
  other.send("echo other\n");
  served.release();
  CHECK(other.line() == "other");
  const auto handled = served.handled();
  const auto at = std::find(handled.begin(), handled.end(), "echo other") - handled.begin();
  INFO("the other client's request was the " << at << "th handled");
  CHECK(at < 50);  // a few turns after it connected, not after the flood (read at once, all before it)
}

TEST_CASE("streams are bounded a uid; the listener keeps serving") {
  test_listener served;
  std::vector<std::unique_ptr<raw_client>> streaming;
  for (int i = 0; i < 4; ++i) {
    streaming.push_back(std::make_unique<raw_client>(served.path()));
    streaming.back()->send("stream 100000000\n");
    CHECK(streaming.back()->line() == R"({"event": "tick"})");
  }
  raw_client fifth(served.path());
  fifth.send("stream 10\necho then\n");
  CHECK_THAT(fifth.line(), Catch::Contains("holds 4 streaming replies already"));
  CHECK(fifth.line() == "then");  // the connection goes on
  streaming.clear();
  REQUIRE(testing::eventually([&] { return served.saw->streams_destroyed == 4 + 1; }));
}

TEST_CASE("out of descriptors, the listener backs off and accepts again once there are some") {
  test_listener served;
  rlimit was{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &was) == 0);
  // Leave this process a few descriptors, fill them, and have one more client wait in the backlog.
  std::vector<int> filler;
  rlimit low = was;
  low.rlim_cur = 64;
  int spare = ::dup(0);
  REQUIRE(spare >= 0);
  ::close(spare);
  if (static_cast<rlim_t>(spare) + 8 > low.rlim_cur) low.rlim_cur = static_cast<rlim_t>(spare) + 8;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(client >= 0);
  for (int fd; (fd = ::dup(0)) >= 0;) filler.push_back(fd);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, served.path().c_str(), sizeof address.sun_path - 1);
  REQUIRE(::connect(client, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  // Told once a try, a little later each time; not a busy loop.
  const bool backed_off = testing::eventually([&] {
    int tries = 0;
    for (const auto& line : served.saw->logged_now()) tries += line.starts_with("control: cannot accept a connection");
    return tries >= 2;
  });
  for (const int fd : filler) ::close(fd);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &was) == 0);
  REQUIRE(backed_off);
  CHECK_THAT(served.saw->logged_now().front(), Catch::Contains("trying again in 50 ms"));
  const std::string request = "echo accepted at last\n";
  REQUIRE(::send(client, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  char reply[64] = {};
  CHECK(::recv(client, reply, sizeof reply - 1, 0) > 0);
  CHECK(std::string(reply) == "accepted at last\n");
  ::close(client);
}

TEST_CASE("connections of other uids: refusals are counted a second, the last slot kept for the program's user") {
  if (::geteuid() != 0) {
    WARN("not root: no other uid to connect as (CI runs this as root)");
    return;
  }
  detail::listener_limits limits = test_listener::default_limits();
  limits.viewer_uids = {65533};
  limits.max_connections = 2;
  test_listener served(limits);
  REQUIRE(::chmod(served.directory.c_str(), 0711) == 0);
  // A child of another uid connects `times` times, holding the first `hold` connections and
  // reading one line from each other one; what it read comes back through a pipe.
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, served.path().c_str(), sizeof address.sun_path - 1);
  auto as_uid = [&](uid_t uid, int times, int hold) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // system calls only from here on: this process has threads
      if (::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(2);
      for (int i = 0; i < times; ++i) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) ::_exit(3);
        if (i < hold) continue;  // held until the child exits
        char got[256];
        (void)::send(fd, "echo in\n", 8, MSG_NOSIGNAL);
        const ssize_t n = ::recv(fd, got, sizeof got, 0);
        if (n > 0) (void)::write(out[1], got, static_cast<std::size_t>(n));
        ::close(fd);
      }
      ::_exit(0);
    }
    ::close(out[1]);
    std::string printed;
    char chunk[4096];
    for (ssize_t n; (n = ::read(out[0], chunk, sizeof chunk)) > 0;) printed.append(chunk, static_cast<std::size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return printed;
  };
  SECTION("a uid not allowed: its first refusal logged, then how many more") {
    CHECK(as_uid(65534, 200, 0).empty());
    REQUIRE(testing::eventually([&] { return served.saw->was_logged("control: refused 199 more connections"); }));
    int refusals = 0;
    for (const auto& line : served.saw->logged_now()) refusals += line.starts_with("control: refused a connection");
    CHECK(refusals == 1);
  }
  SECTION("another uid may not take the last connection") {
    CHECK_THAT(as_uid(65533, 2, 1), Catch::Contains("busy: 1 connections already"));
  }
  SECTION("the program's own user may") {
    raw_client first(served.path()), second(served.path());
    second.send("echo mine\n");
    CHECK(second.line() == "mine");
  }
}

TEST_CASE("a logger that throws loses its line, not a connection nor the accepting") {
  detail::listener_limits limits = test_listener::default_limits();
  limits.max_pending = 64 * 1024;
  test_listener served(limits);
  {
    const std::lock_guard hold(served.saw->lock);
    served.saw->logger_throws = true;
  }
  raw_client greedy(served.path());  // never reads: cut off, and the cut-off's line throws
  greedy.send("stream 100000000\n");
  REQUIRE(testing::eventually([&] { return served.saw->streams_destroyed == 1; }));
  CHECK(served.saw->was_logged(fmt::format("control: uid {} cut off", ::geteuid())));
  raw_client next(served.path());
  next.send("echo served\n");
  CHECK(next.line() == "served");
}
