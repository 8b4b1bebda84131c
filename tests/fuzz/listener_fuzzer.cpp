// libFuzzer target: the control listener's connection handling. Each input is a script of
// client actions against one listener (serving test commands): connect, write bytes in pieces,
// ask for replies that stream, read a little, shut one side, vanish. After each input a new
// client must be answered: the listener is alive and serving. ASan and UBSan watch the rest.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <hotswap/detail/control/listener.hpp>

namespace {

namespace detail = hotswap::detail;

class counted_stream final : public detail::reply_stream {
 public:
  explicit counted_stream(long lines) : left_(lines) {}
  bool pump(detail::reply_lines& reply) override {
    for (int i = 0; i < 16 && left_ > 0; ++i, --left_) reply.line(R"({"event": "tick"})");
    if (left_ > 0) return true;
    reply.line(R"({"ok": true})");
    return false;
  }

 private:
  long left_;
};

struct served_listener {
  std::string directory, path;
  std::unique_ptr<detail::control_listener> listener;

  served_listener() {
    char made[] = "/tmp/hotswap-listener-fuzz-XXXXXX";
    if (!::mkdtemp(made)) std::abort();
    directory = made;
    path = directory + "/fuzz.sock";
    const int fd = ::open(made, O_DIRECTORY | O_CLOEXEC);
    auto opened = detail::control_listener::open(
        fd, "fuzz.sock", path,
        {.operator_uids = {},
         .viewer_uids = {},
         .max_connections = 6,
         .max_streams_per_uid = 2,
         .max_request = 256,
         .max_pending = 8 * 1024,
         .deadline = std::chrono::milliseconds(2000)},
        [](std::string_view request, const detail::control_peer&, detail::reply_lines& reply) {
          const std::string line(request);
          if (line == "throw") throw std::runtime_error("thrown");
          if (line.starts_with("stream "))
            return reply.follow(std::make_unique<counted_stream>(std::atol(line.c_str() + 7)));
          reply.line(line.starts_with("echo ") ? line.substr(5) : "ok");
        },
        [](const std::string&) {});
    ::close(fd);
    if (!opened) std::abort();
    listener = std::move(*opened);
  }
};

int connect_to(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;  // the backlog is full: another try later
  }
  return fd;
}

/// A new client's request is answered (within a minute: far beyond a loaded machine's need).
void check_alive(const std::string& path) {
  int fd = -1;
  for (int tries = 0; fd < 0 && tries < 60'000; ++tries)
    if ((fd = connect_to(path)) < 0) ::poll(nullptr, 0, 1);
  if (fd < 0) std::abort();
  const char request[] = "echo alive\n";
  if (::send(fd, request, sizeof request - 1, MSG_NOSIGNAL) != sizeof request - 1) std::abort();
  std::string got;
  while (got.find('\n') == std::string::npos) {
    pollfd waiting{fd, POLLIN, 0};
    if (::poll(&waiting, 1, 60'000) <= 0) std::abort();
    char chunk[256];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    got.append(chunk, static_cast<std::size_t>(n));
  }
  // Busy (its connections not yet noticed gone) is an answer too; silence is not.
  if (got != "alive\n" && got.find("busy") == std::string::npos) std::abort();
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static served_listener served;
  static const std::array<std::string, 8> canned{"echo x\n", "stream 40\n",     "stream 100000000\n",
                                                 "throw\n",  "echo \xff\xfe\n", std::string(300, 'y'),
                                                 "\n",       "echo a\necho b\n"};
  std::array<int, 4> clients{-1, -1, -1, -1};
  std::size_t at = 0;
  auto next = [&]() -> std::uint8_t { return at < size ? data[at++] : 0; };
  while (at < size) {
    const std::uint8_t op = next();
    int& client = clients[(op >> 4) % clients.size()];
    switch (op % 8) {
      case 0:
        if (client < 0) client = connect_to(served.path);
        break;
      case 1: {  // raw bytes, in one piece
        const std::size_t n = std::min<std::size_t>(next() % 64, size - at);
        if (client >= 0) (void)::send(client, data + at, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        at += n;
        break;
      }
      case 2: {  // a request, byte by byte or whole
        const std::string& request = canned[next() % canned.size()];
        if (client < 0) break;
        if (op & 8)
          for (const char c : request) (void)::send(client, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        else
          (void)::send(client, request.data(), request.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        break;
      }
      case 3:
        if (client >= 0) ::shutdown(client, SHUT_RD);
        break;
      case 4:
        if (client >= 0) ::shutdown(client, SHUT_WR);
        break;
      case 5:
        if (client >= 0) ::close(std::exchange(client, -1));
        break;
      default: {  // read a little of what came
        char chunk[512];
        if (client >= 0) (void)::recv(client, chunk, 1 + next() % sizeof chunk, MSG_DONTWAIT);
        break;
      }
    }
  }
  for (int& client : clients)
    if (client >= 0) ::close(std::exchange(client, -1));
  check_alive(served.path);
  return 0;
}
