// kv_load: the load client of the kv service's upgrade figures (benchmarks/kv_compare.py). It
// opens N connections to a Redis-protocol server, each doing SET then GET of a key of its own,
// request-reply, unpipelined, in a loop, until SIGTERM or SIGINT; then it writes each request's
// start and latency, from std::chrono::steady_clock (CLOCK_MONOTONIC: Python's
// time.monotonic_ns()), so that the driver can tell which requests overlapped an upgrade, which
// redis-benchmark cannot say.
//
//     kv_load --port PORT [--connections 50] --out FILE
//
// It prints `kv_load: N connections running` once every connection has had a reply, and at the
// end how many requests it made and how many failed. FILE: two int64 a request (start_ns,
// latency_ns), native byte order. Exit status 1 if a request failed (an error reply, a connection
// closed or reset): the upgrade is to drop none.
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct Sample {
  std::int64_t start_ns;
  std::int64_t latency_ns;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string command(std::initializer_list<std::string_view> args) {
  std::string out = fmt::format("*{}\r\n", args.size());
  for (const auto arg : args) out += fmt::format("${}\r\n{}\r\n", arg.size(), arg);
  return out;
}

// One client connection: SET key value, GET key (the value back), SET the next key, ...
class Connection {
 public:
  Connection(asio::io_context& io, int index, std::function<void()> first_reply)
      : socket_(io), index_(index), first_reply_(std::move(first_reply)) {}

  void start(const tcp::endpoint& at) {
    socket_.async_connect(at, [this](const error_code& failed) {
      if (failed) return fail("connect", failed.message());
      socket_.set_option(tcp::no_delay(true));
      send();
    });
  }

  void stop() {
    stopping_ = true;
    error_code ignored;
    socket_.close(ignored);
  }

  const std::vector<Sample>& samples() const { return samples_; }
  bool failed() const { return failed_; }

 private:
  static constexpr std::string_view value = "xxx";  // redis-benchmark's default size (-d 3)

  void send() {
    const auto key = fmt::format("kvload:{}:{}", index_, (count_ / 2) % 1000);
    request_ = count_ % 2 == 0 ? command({"SET", key, value}) : command({"GET", key});
    started_ = now_ns();
    asio::async_write(socket_, asio::buffer(request_), [this](const error_code& failed, std::size_t) {
      if (failed) return fail("write", failed.message());
      read_reply();
    });
  }

  void read_reply() {
    asio::async_read_until(socket_, input_, "\r\n", [this](const error_code& failed, std::size_t length) {
      if (failed) return fail("read", failed.message());
      const std::string line(asio::buffers_begin(input_.data()), asio::buffers_begin(input_.data()) + length - 2);
      input_.consume(length);
      const bool set = count_ % 2 == 0;
      if (set) return line == "+OK" ? done() : fail("SET", line);
      if (line != fmt::format("${}", value.size())) return fail("GET", line);
      const std::size_t body = value.size() + 2;  // the value and its \r\n
      if (input_.size() >= body) return check_value();
      asio::async_read(socket_, input_, asio::transfer_exactly(body - input_.size()),
                       [this](const error_code& failed_body, std::size_t) {
                         if (failed_body) return fail("read", failed_body.message());
                         check_value();
                       });
    });
  }

  void check_value() {
    const std::string got(asio::buffers_begin(input_.data()), asio::buffers_begin(input_.data()) + value.size() + 2);
    input_.consume(value.size() + 2);
    if (got != fmt::format("{}\r\n", value)) return fail("GET's value", got);
    done();
  }

  void done() {
    samples_.push_back({started_, now_ns() - started_});
    if (++count_ == 1) first_reply_();
    if (!stopping_) send();
  }

  void fail(std::string_view what, const std::string& why) {
    if (stopping_) return;  // closed by stop()
    failed_ = true;
    fmt::print(stderr, "kv_load: connection {}: {}: {}\n", index_, what, why);
    error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  int index_;
  std::function<void()> first_reply_;
  asio::streambuf input_;
  std::string request_;
  std::int64_t started_ = 0;
  std::uint64_t count_ = 0;
  bool stopping_ = false;
  bool failed_ = false;
  std::vector<Sample> samples_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kv_load: SET/GET request-reply load, each request's start and latency written"};
  std::uint16_t port = 0;
  int connections = 50;
  std::string out;
  app.add_option("--port", port, "the server's TCP port on 127.0.0.1")->required();
  app.add_option("--connections", connections, "client connections")->check(CLI::Range(1, 10000));
  app.add_option("--out", out, "where the samples go")->required();
  CLI11_PARSE(app, argc, argv);

  asio::io_context io{1};
  std::vector<std::unique_ptr<Connection>> clients;
  int running = 0;
  const auto first_reply = [&] {
    if (++running == connections) {
      fmt::print("kv_load: {} connections running\n", connections);
      std::fflush(stdout);
    }
  };
  const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), port);
  for (int i = 0; i < connections; ++i) {
    clients.push_back(std::make_unique<Connection>(io, i, first_reply));
    clients.back()->start(at);
  }
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const error_code&, int) {
    for (auto& client : clients) client->stop();
    io.stop();
  });
  io.run();

  std::ofstream file(out, std::ios::binary);
  std::size_t requests = 0;
  bool failed = false;
  for (const auto& client : clients) {
    file.write(reinterpret_cast<const char*>(client->samples().data()),
               static_cast<std::streamsize>(client->samples().size() * sizeof(Sample)));
    requests += client->samples().size();
    failed = failed || client->failed();
  }
  file.close();
  fmt::print("kv_load: {} requests, {}\n", requests, failed ? "some failed" : "none failed");
  return failed || !file ? 1 : 0;
}
