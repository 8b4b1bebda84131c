// A client of a Unix socket that speaks in lines, as the control socket's tests drive it.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <catch2/catch.hpp>

namespace testing {

struct line_client {
  int fd = -1;
  std::string pending;

  explicit line_client(const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  }
  line_client(const line_client&) = delete;
  line_client& operator=(const line_client&) = delete;
  ~line_client() {
    if (fd >= 0) ::close(fd);
  }

  /// Sends `bytes`, or as many as go before the other end cuts the connection (what follows shows it).
  void send(const std::string& bytes) const {
    for (std::size_t sent = 0; sent < bytes.size();) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }
  /// The next line, or "" once the other end closed the connection.
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
};

}  // namespace testing
