// The kv service's protocol core, without servers: the RESP parser and its bounds, each command's
// replies and errors (as redis-server 7.0 words them), KEYS patterns, and the store's schema
// migrated from kv 1 to kv 2 and back.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kv/commands.hpp"
#include "kv/resp.hpp"
#include "kv/store.hpp"

namespace {

using argv_t = std::vector<std::string>;

/// Everything `bytes` parses to: the commands, then the error reply if the parser failed.
struct parsed {
  std::vector<argv_t> commands;
  std::string error;
  bool operator==(const parsed&) const = default;
};

parsed parse(kv::request_parser& parser, std::string_view bytes, bool byte_by_byte) {
  parsed out;
  const auto drain = [&] {
    for (;;) {
      const auto status = parser.next();
      if (status == kv::parse_status::command) {
        out.commands.push_back(parser.take());
      } else {
        if (status == kv::parse_status::error) out.error = parser.error_reply();
        return;
      }
    }
  };
  if (byte_by_byte) {
    for (const char c : bytes) parser.feed(std::string_view(&c, 1)), drain();
  } else {
    parser.feed(bytes);
    drain();
  }
  return out;
}

/// Parses `bytes` in one go and byte by byte; both must agree.
parsed parse(std::string_view bytes, kv::request_parser limits = {}) {
  auto whole = limits, bytewise = limits;
  const auto one_go = parse(whole, bytes, false);
  const auto fragments = parse(bytewise, bytes, true);
  CHECK(one_go == fragments);
  CHECK(whole.closed() == !one_go.error.empty());
  return one_go;
}

std::string error(std::string_view text) {
  return kv::reply::error(text);
}

/// A service of `shards` shards, each a store of type Store, at a settable clock.
template <class Store>
struct service {
  explicit service(int release, std::size_t shards = 3) : stores(shards) {
    env.release = release;
    env.shards = shards;
  }
  std::string operator()(const argv_t& argv) {
    return kv::run(state, argv, env, [this](std::size_t shard, std::size_t db, const argv_t& shard_argv) {
      return kv::execute(stores.at(shard), db, shard_argv, now);
    });
  }
  std::vector<Store> stores;
  kv::session state;
  kv::environment env;
  std::int64_t now = 1'700'000'000'000;
};

}  // namespace

// -- the parser --

TEST_CASE("kv resp: multibulk commands parse the same fed whole or byte by byte") {
  const auto result = parse("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nal\r\n*1\r\n$4\r\nPING\r\n");
  CHECK(result.error.empty());
  REQUIRE(result.commands == std::vector<argv_t>{{"SET", "k", "v\r\nal"}, {"PING"}});
  // An empty bulk, an empty multibulk and a negative count: the last two are no command.
  CHECK(parse("*0\r\n*-1\r\n*2\r\n$0\r\n\r\n$1\r\nx\r\n").commands == std::vector<argv_t>{{"", "x"}});
  // Partial input waits for the rest.
  kv::request_parser parser;
  parser.feed("*2\r\n$3\r\nGET\r\n$3\r\nke");
  CHECK(parser.next() == kv::parse_status::need_more);
  parser.feed("y\r");
  CHECK(parser.next() == kv::parse_status::need_more);
  parser.feed("\n");
  REQUIRE(parser.next() == kv::parse_status::command);
  CHECK(parser.take() == argv_t{"GET", "key"});
  CHECK(parser.next() == kv::parse_status::need_more);
}

TEST_CASE("kv resp: inline commands split as Redis splits them") {
  CHECK(parse("PING\r\nset a b\nECHO \"x\\ty\\x41\" 'it\\'s'\r\n\r\n   \r\n").commands ==
        std::vector<argv_t>{{"PING"}, {"set", "a", "b"}, {"ECHO", "x\tyA", "it's"}});
  CHECK(parse("ECHO \"abc\r\n").error == error("ERR Protocol error: unbalanced quotes in request"));
  CHECK(parse("ECHO \"a\"b\r\n").error == error("ERR Protocol error: unbalanced quotes in request"));
  // Commands before the error are found; nothing after it.
  const auto result = parse("PING\r\nECHO 'x\r\nPING\r\n");
  CHECK(result.commands == std::vector<argv_t>{{"PING"}});
  CHECK_FALSE(result.error.empty());
}

TEST_CASE("kv resp: every bound and malformed header is a protocol error, and the parser closes") {
  CHECK(parse("*x\r\n").error == error("ERR Protocol error: invalid multibulk length"));
  CHECK(parse("*01\r\n").error == error("ERR Protocol error: invalid multibulk length"));
  CHECK(parse("*1048576\r\n").error.empty());  // the bound itself is allowed (and nothing is reserved for it)
  CHECK(parse("*1048577\r\n").error == error("ERR Protocol error: invalid multibulk length"));
  CHECK(parse("*1\r\n$-1\r\n").error == error("ERR Protocol error: invalid bulk length"));
  CHECK(parse("*1\r\n$abc\r\n").error == error("ERR Protocol error: invalid bulk length"));
  CHECK(parse("*1\r\n$536870913\r\n").error == error("ERR Protocol error: invalid bulk length"));
  // The bound is a parameter.
  kv::request_parser small;
  small.max_bulk_length = 4;
  CHECK(parse("*1\r\n$4\r\nabcd\r\n", small).commands == std::vector<argv_t>{{"abcd"}});
  CHECK(parse("*1\r\n$5\r\nabcde\r\n", small).error == error("ERR Protocol error: invalid bulk length"));
  // A command's arguments together are bounded too: past it, the connection closes with no reply.
  kv::request_parser short_commands;
  short_commands.max_command_bytes = 6;
  CHECK(parse("*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n", short_commands).commands == std::vector<argv_t>{{"abc", "def"}});
  kv::request_parser closing = short_commands;
  CHECK(parse(closing, "*3\r\n$3\r\nabc\r\n$3\r\ndef\r\n$1\r\ng\r\n", false).commands.empty());
  CHECK(closing.closed());
  CHECK(closing.error_reply().empty());
  // A nested array, and anything else where a bulk is expected.
  CHECK(parse("*1\r\n*1\r\n$4\r\nPING\r\n").error == error("ERR Protocol error: expected '$', got '*'"));
  CHECK(parse("*2\r\n$3\r\nGET\r\n:1\r\n").error == error("ERR Protocol error: expected '$', got ':'"));
  // 100,000 nested arrays: one error at the second, nothing kept.
  std::string nested;
  for (int i = 0; i < 100'000; ++i) nested += "*1\r\n";
  CHECK(parse(nested).error == error("ERR Protocol error: expected '$', got '*'"));
  // Lines that never end.
  CHECK(parse(std::string(64 * 1024, 'a')).error.empty());
  CHECK(parse(std::string(64 * 1024 + 1, 'a')).error == error("ERR Protocol error: too big inline request"));
  CHECK(parse(std::string(64 * 1024, 'a') + "b\r\n").error == error("ERR Protocol error: too big inline request"));
  CHECK(parse(std::string("*").append(64 * 1024 + 1, '1')).error ==
        error("ERR Protocol error: too big mbulk count string"));
  CHECK(parse(std::string("*1\r\n$").append(64 * 1024, '1')).error ==
        error("ERR Protocol error: too big bulk count string"));
  // After an error, more bytes change nothing.
  kv::request_parser parser;
  parser.feed("*x\r\n");
  REQUIRE(parser.next() == kv::parse_status::error);
  parser.feed("PING\r\n");
  CHECK(parser.next() == kv::parse_status::error);
  CHECK(parser.closed());
}

TEST_CASE("kv resp: a 512 MB declared bulk costs only what has arrived") {
  kv::request_parser parser;
  parser.feed("*2\r\n$3\r\nSET\r\n$536870912\r\n");
  CHECK(parser.next() == kv::parse_status::need_more);
  CHECK(parser.held() < 64 * 1024);
  const std::string chunk(16 * 1024, 'x');
  for (int i = 0; i < 4; ++i) {
    parser.feed(chunk);
    CHECK(parser.next() == kv::parse_status::need_more);
  }
  // What arrived, held once (the argument grows geometrically; the buffer is reused).
  CHECK(parser.held() < 4 * 64 * 1024);
  CHECK(parser.argv.back().size() == 4 * chunk.size());
}

TEST_CASE("kv resp: replies are encoded as RESP2") {
  using namespace kv::reply;
  CHECK(simple("PONG") == "+PONG\r\n");
  CHECK(kv::reply::error("ERR a\r\nb") == "-ERR a  b\r\n");
  CHECK(integer(-42) == ":-42\r\n");
  CHECK(bulk("a\r\nb") == "$4\r\na\r\nb\r\n");
  CHECK(bulk("") == "$0\r\n\r\n");
  CHECK(null_bulk() == "$-1\r\n");
  CHECK(null_array() == "*-1\r\n");
  CHECK(array({integer(1), null_bulk()}) == "*2\r\n:1\r\n$-1\r\n");
  CHECK(bulk_array(std::vector<std::string>{"a", "bc"}) == "*2\r\n$1\r\na\r\n$2\r\nbc\r\n");
}

TEST_CASE("kv resp: integers are read as Redis's string2ll reads them") {
  CHECK(kv::parse_integer("0") == 0);
  CHECK(kv::parse_integer("-9223372036854775808") == INT64_MIN);
  CHECK(kv::parse_integer("9223372036854775807") == INT64_MAX);
  for (const char* bad : {"", "-", "01", "-0", "+1", " 1", "1 ", "9223372036854775808", "1.5", "0x10"})
    CHECK_FALSE(kv::parse_integer(bad).has_value());
}

// -- KEYS patterns --

TEST_CASE("kv glob: Redis's KEYS patterns") {
  using kv::glob_match;
  CHECK(glob_match("*", "anything"));
  CHECK(glob_match("h?llo", "hello"));
  CHECK_FALSE(glob_match("h?llo", "hllo"));
  CHECK(glob_match("h*llo", "heeeello"));
  CHECK(glob_match("h*llo", "hllo"));
  CHECK(glob_match("h[ae]llo", "hallo"));
  CHECK_FALSE(glob_match("h[ae]llo", "hillo"));
  CHECK(glob_match("h[^e]llo", "hallo"));
  CHECK_FALSE(glob_match("h[^e]llo", "hello"));
  CHECK(glob_match("h[a-b]llo", "hbllo"));
  CHECK(glob_match("h[b-a]llo", "hallo"));  // a reversed range is swapped
  CHECK_FALSE(glob_match("h[a-b]llo", "hcllo"));
  CHECK(glob_match("h\\*llo", "h*llo"));
  CHECK_FALSE(glob_match("h\\*llo", "hallo"));
  CHECK(glob_match("[\\]]", "]"));
  CHECK(glob_match("a[bc", "ab"));  // an unclosed bracket runs to the end
  CHECK_FALSE(glob_match("[", "a"));
  CHECK(glob_match("a\\", "a\\"));  // a trailing backslash is itself
  CHECK(glob_match("*a*b*", "xxaxxbxx"));
  CHECK_FALSE(glob_match("*a*b*", "xxbxxaxx"));
  CHECK_FALSE(glob_match("*", ""));  // as in Redis: an empty key matches only an empty pattern
  CHECK(glob_match("", ""));
}

TEST_CASE("kv glob: a pattern of many stars takes polynomial time") {
  // Exponential backtracking would not finish: 60 stars against 10,000 bytes that fail at the end.
  std::string pattern;
  for (int i = 0; i < 60; ++i) pattern += "*a";
  pattern += "b";
  const std::string key(10'000, 'a');
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(kv::glob_match(pattern, key));
  CHECK(kv::glob_match(pattern, key + "b"));
  // A generous bound, to catch exponential time only: the work is about 1.2 M steps.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
}

// -- commands --

TEST_CASE("kv commands: strings, GETSET, INCR/DECR/INCRBY and their errors") {
  service<kv::v1::Store> kv(1);
  CHECK(kv({"GET", "k"}) == "$-1\r\n");
  CHECK(kv({"SET", "k", "v"}) == "+OK\r\n");
  CHECK(kv({"get", "k"}) == "$1\r\nv\r\n");
  CHECK(kv({"SET", "k", "w", "NX"}) == "$-1\r\n");
  CHECK(kv({"SET", "k", "w", "XX"}) == "+OK\r\n");
  CHECK(kv({"SET", "n", "w", "XX"}) == "$-1\r\n");
  CHECK(kv({"SET", "k", "x", "NX", "XX"}) == error("ERR syntax error"));
  CHECK(kv({"SET", "k", "x", "GET"}) == "$1\r\nw\r\n");
  CHECK(kv({"SET", "k", "x", "EX", "10"}) == error("ERR syntax error"));  // kv 1 has no expiry
  CHECK(kv({"GETSET", "k", "y"}) == "$1\r\nx\r\n");
  CHECK(kv({"GETSET", "new", "1"}) == "$-1\r\n");
  CHECK(kv({"INCR", "new"}) == ":2\r\n");
  CHECK(kv({"DECR", "new"}) == ":1\r\n");
  CHECK(kv({"INCRBY", "new", "-10"}) == ":-9\r\n");
  CHECK(kv({"INCR", "counter"}) == ":1\r\n");
  CHECK(kv({"INCR", "k"}) == error("ERR value is not an integer or out of range"));
  CHECK(kv({"INCRBY", "new", "x"}) == error("ERR value is not an integer or out of range"));
  CHECK(kv({"SET", "big", "9223372036854775807"}) == "+OK\r\n");
  CHECK(kv({"INCR", "big"}) == error("ERR increment or decrement would overflow"));
  CHECK(kv({"SET", "small", "-9223372036854775808"}) == "+OK\r\n");
  CHECK(kv({"DECR", "small"}) == error("ERR increment or decrement would overflow"));
  CHECK(kv({"SET", "padded", " 1"}) == "+OK\r\n");
  CHECK(kv({"INCR", "padded"}) == error("ERR value is not an integer or out of range"));
  CHECK(kv({"DEL", "k", "new", "nothing", "k"}) == ":2\r\n");
  CHECK(kv({"EXISTS", "k", "counter", "counter"}) == ":2\r\n");
}

TEST_CASE("kv commands: lists, and WRONGTYPE between lists and strings") {
  service<kv::v1::Store> kv(1);
  CHECK(kv({"RPUSH", "l", "b", "c"}) == ":2\r\n");
  CHECK(kv({"LPUSH", "l", "a", "z"}) == ":4\r\n");  // z, a, b, c
  CHECK(kv({"LRANGE", "l", "0", "-1"}) == "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
  CHECK(kv({"LRANGE", "l", "-2", "100"}) == "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
  CHECK(kv({"LRANGE", "l", "3", "1"}) == "*0\r\n");
  CHECK(kv({"LRANGE", "l", "x", "1"}) == error("ERR value is not an integer or out of range"));
  CHECK(kv({"LRANGE", "none", "0", "1"}) == "*0\r\n");
  CHECK(kv({"LPOP", "l"}) == "$1\r\nz\r\n");
  CHECK(kv({"RPOP", "l"}) == "$1\r\nc\r\n");
  CHECK(kv({"RPUSH", "l", "d", "e"}) == ":4\r\n");
  CHECK(kv({"RPOP", "l", "3"}) == "*3\r\n$1\r\ne\r\n$1\r\nd\r\n$1\r\nb\r\n");
  CHECK(kv({"LPOP", "l", "0"}) == "*0\r\n");
  CHECK(kv({"LPOP", "l", "-1"}) == error("ERR value is out of range, must be positive"));
  CHECK(kv({"LPOP", "l", "x"}) == error("ERR value is out of range, must be positive"));
  CHECK(kv({"LPOP", "l", "1", "2"}) == error("ERR wrong number of arguments for 'lpop' command"));
  CHECK(kv({"LPOP", "l", "5"}) == "*1\r\n$1\r\na\r\n");
  CHECK(kv({"EXISTS", "l"}) == ":0\r\n");  // emptied: gone
  CHECK(kv({"LPOP", "l"}) == "$-1\r\n");
  CHECK(kv({"LPOP", "l", "2"}) == "*-1\r\n");
  CHECK(kv({"SET", "s", "v"}) == "+OK\r\n");
  const auto wrongtype = error("WRONGTYPE Operation against a key holding the wrong kind of value");
  for (const auto& command : std::vector<argv_t>{{"LPUSH", "s", "x"}, {"RPOP", "s"}, {"LRANGE", "s", "0", "1"}})
    CHECK(kv(command) == wrongtype);
  CHECK(kv({"RPUSH", "list", "x"}) == ":1\r\n");
  for (const auto& command : std::vector<argv_t>{{"GET", "list"}, {"INCR", "list"}, {"GETSET", "list", "v"}})
    CHECK(kv(command) == wrongtype);
  CHECK(kv({"SET", "list", "v", "GET"}) == wrongtype);
  CHECK(kv({"MGET", "s", "list", "none"}) == "*3\r\n$1\r\nv\r\n$-1\r\n$-1\r\n");  // MGET: nil, not WRONGTYPE
  CHECK(kv({"SET", "list", "now a string"}) == "+OK\r\n");
  CHECK(kv({"GET", "list"}) == "$12\r\nnow a string\r\n");
}

TEST_CASE("kv commands: a long list grows and shrinks at both ends in amortized constant time") {
  service<kv::v1::Store> kv(1, 1);
  for (int i = 0; i < 100'000; ++i) REQUIRE(kv({"LPUSH", "l", std::to_string(i)}) == kv::reply::integer(i + 1));
  CHECK(kv({"LRANGE", "l", "0", "1"}) == "*2\r\n$5\r\n99999\r\n$5\r\n99998\r\n");
  for (int i = 0; i < 99'999; ++i) REQUIRE(kv({"LPOP", "l"}).starts_with("$"));
  CHECK(kv({"LRANGE", "l", "0", "-1"}) == "*1\r\n$1\r\n0\r\n");
  const auto& value = kv.stores[0].dbs[0].at("l");
  CHECK(value.items.size() < 1000);  // what the pops left at the front was dropped
}

TEST_CASE("kv commands: expiry in kv 2 (EX, PX, EXAT, PXAT, KEEPTTL, EXPIRE, TTL, PERSIST), lazily") {
  service<kv::v2::Store> kv(2);
  CHECK(kv({"SET", "k", "v", "EX", "10"}) == "+OK\r\n");
  CHECK(kv({"TTL", "k"}) == ":10\r\n");
  kv.now += 2'400;
  CHECK(kv({"TTL", "k"}) == ":8\r\n");  // 7.6 s, rounded as Redis rounds
  CHECK(kv({"SET", "k", "w", "KEEPTTL"}) == "+OK\r\n");
  CHECK(kv({"TTL", "k"}) == ":8\r\n");
  CHECK(kv({"INCR", "k"}) == error("ERR value is not an integer or out of range"));
  CHECK(kv({"SET", "k", "w"}) == "+OK\r\n");  // a plain SET drops the expiry
  CHECK(kv({"TTL", "k"}) == ":-1\r\n");
  CHECK(kv({"TTL", "none"}) == ":-2\r\n");
  CHECK(kv({"SET", "p", "v", "PX", "1500"}) == "+OK\r\n");
  CHECK(kv({"TTL", "p"}) == ":2\r\n");
  kv.now += 1'500;
  CHECK(kv({"GET", "p"}) == "$1\r\nv\r\n");  // expired only once now > expiry, as in Redis
  kv.now += 1;
  CHECK(kv({"GET", "p"}) == "$-1\r\n");
  CHECK(kv({"SET", "a", "v", "EXAT", std::to_string(kv.now / 1000 + 100)}) == "+OK\r\n");
  CHECK(kv({"SET", "b", "v", "PXAT", std::to_string(kv.now + 100'000)}) == "+OK\r\n");
  CHECK(kv({"TTL", "b"}) == ":100\r\n");
  CHECK(kv({"SET", "k", "v", "EX", "0"}) == error("ERR invalid expire time in 'set' command"));
  CHECK(kv({"SET", "k", "v", "PX", "-5"}) == error("ERR invalid expire time in 'set' command"));
  CHECK(kv({"SET", "k", "v", "EX", "x"}) == error("ERR value is not an integer or out of range"));
  CHECK(kv({"SET", "k", "v", "EX", "9223372036854775"}) == error("ERR invalid expire time in 'set' command"));
  CHECK(kv({"SET", "k", "v", "EX", "10", "PX", "10"}) == error("ERR syntax error"));
  CHECK(kv({"SET", "k", "v", "KEEPTTL", "EX", "10"}) == error("ERR syntax error"));
  CHECK(kv({"SET", "k", "v", "EX"}) == error("ERR syntax error"));
  // EXPIRE and its options.
  CHECK(kv({"EXPIRE", "none", "10"}) == ":0\r\n");
  CHECK(kv({"EXPIRE", "k", "10"}) == ":1\r\n");
  CHECK(kv({"EXPIRE", "k", "20", "NX"}) == ":0\r\n");
  CHECK(kv({"EXPIRE", "k", "20", "GT"}) == ":1\r\n");
  CHECK(kv({"EXPIRE", "k", "30", "LT"}) == ":0\r\n");
  CHECK(kv({"TTL", "k"}) == ":20\r\n");
  CHECK(kv({"EXPIRE", "k", "5", "NX", "XX"}) ==
        error("ERR NX and XX, GT or LT options at the same time are not compatible"));
  CHECK(kv({"EXPIRE", "k", "5", "GT", "LT"}) == error("ERR GT and LT options at the same time are not compatible"));
  CHECK(kv({"EXPIRE", "k", "5", "SOON"}) == error("ERR Unsupported option SOON"));
  CHECK(kv({"EXPIRE", "k", "x"}) == error("ERR value is not an integer or out of range"));
  CHECK(kv({"EXPIRE", "k", "9223372036854775807"}) == error("ERR invalid expire time in 'expire' command"));
  CHECK(kv({"PERSIST", "k"}) == ":1\r\n");
  CHECK(kv({"PERSIST", "k"}) == ":0\r\n");
  CHECK(kv({"PERSIST", "none"}) == ":0\r\n");
  CHECK(kv({"TTL", "k"}) == ":-1\r\n");
  CHECK(kv({"EXPIRE", "k", "-1"}) == ":1\r\n");  // in the past: deleted
  CHECK(kv({"EXISTS", "k"}) == ":0\r\n");
  // An expired key is gone for every command, and KEYS leaves it out before it is touched.
  CHECK(kv({"RPUSH", "l", "x"}) == ":1\r\n");
  CHECK(kv({"EXPIRE", "l", "1"}) == ":1\r\n");
  CHECK(kv({"KEYS", "l"}) == "*1\r\n$1\r\nl\r\n");
  kv.now += 1'001;
  CHECK(kv({"KEYS", "l"}) == "*0\r\n");
  CHECK(kv({"LPUSH", "l", "y"}) == ":1\r\n");
  CHECK(kv({"TTL", "l"}) == ":-1\r\n");
  // INCR keeps the expiry, as in Redis.
  CHECK(kv({"SET", "n", "1", "EX", "100"}) == "+OK\r\n");
  CHECK(kv({"INCR", "n"}) == ":2\r\n");
  CHECK(kv({"TTL", "n"}) == ":100\r\n");
}

TEST_CASE("kv store: a sweep deletes expired keys that nothing touches, a budget of buckets at a time") {
  kv::v2::Store store;
  std::int64_t now = 1'000'000;
  for (int i = 0; i < 1000; ++i) {
    const auto key = std::to_string(i);
    REQUIRE(kv::execute(store, i % 3, {"SET", key, "v"}, now) == "+OK\r\n");
    if (i % 2 == 0) REQUIRE(kv::execute(store, i % 3, {"EXPIRE", key, "10"}, now) == ":1\r\n");
  }
  CHECK(kv::count(store, 0) + kv::count(store, 1) + kv::count(store, 2) == 1000);
  std::uint64_t cursor = 0;
  CHECK(kv::sweep(store, cursor, now + 10'000, 1'000'000) == 0);  // not yet expired: nothing goes
  CHECK(kv::count(store, 0) + kv::count(store, 1) + kv::count(store, 2) == 1000);
  now += 10'001;
  int sweeps = 0;
  do {
    cursor = kv::sweep(store, cursor, now, 64);
    ++sweeps;
  } while (cursor != 0);
  CHECK(sweeps > 3);  // the budget bounds each sweep
  CHECK(kv::count(store, 0) + kv::count(store, 1) + kv::count(store, 2) == 500);
  CHECK(kv::execute(store, 1, {"EXISTS", "1"}, now) == ":1\r\n");
  kv::v1::Store old;
  CHECK(kv::sweep(old, 0, now, 10) == 0);
}

TEST_CASE("kv commands: the expiry commands are kv 2's: unknown to kv 1") {
  service<kv::v1::Store> kv(1);
  CHECK(kv({"EXPIRE", "k", "10"}) == error("ERR unknown command 'EXPIRE', with args beginning with: 'k' '10' "));
  CHECK(kv({"TTL", "k"}) == error("ERR unknown command 'TTL', with args beginning with: 'k' "));
  CHECK(kv({"PERSIST", "k"}) == error("ERR unknown command 'PERSIST', with args beginning with: 'k' "));
  CHECK(kv({"SET", "k", "v", "KEEPTTL"}) == error("ERR syntax error"));
}

TEST_CASE("kv commands: unknown commands, arities and the containers' subcommands, as Redis words them") {
  service<kv::v1::Store> kv(1);
  CHECK(kv({"foo", "a", "b"}) == "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
  CHECK(kv({"foo"}) == "-ERR unknown command 'foo', with args beginning with: \r\n");
  CHECK(kv({"foo", "a\r\nb"}) == "-ERR unknown command 'foo', with args beginning with: 'a  b' \r\n");
  // Redis shows arguments while it has shown fewer than 128 bytes, the last one cut at 128.
  const std::string long_arg(200, 'x');
  CHECK(kv({"foo", "ab", long_arg, "c"}) ==
        error("ERR unknown command 'foo', with args beginning with: 'ab' '" + std::string(123, 'x') + "' "));
  CHECK(kv({std::string(200, 'f')}) ==
        error("ERR unknown command '" + std::string(128, 'f') + "', with args beginning with: "));
  CHECK(kv({"GET"}) == error("ERR wrong number of arguments for 'get' command"));
  CHECK(kv({"GET", "a", "b"}) == error("ERR wrong number of arguments for 'get' command"));
  CHECK(kv({"SeT", "a"}) == error("ERR wrong number of arguments for 'set' command"));
  CHECK(kv({"MSET", "a", "1", "b"}) == error("ERR wrong number of arguments for 'mset' command"));
  CHECK(kv({"MSET", "a"}) == error("ERR wrong number of arguments for 'mset' command"));
  CHECK(kv({"DEL"}) == error("ERR wrong number of arguments for 'del' command"));
  CHECK(kv({"LPUSH", "l"}) == error("ERR wrong number of arguments for 'lpush' command"));
  CHECK(kv({"PING", "a", "b"}) == error("ERR wrong number of arguments for 'ping' command"));
  CHECK(kv({"KEYS"}) == error("ERR wrong number of arguments for 'keys' command"));
  CHECK(kv({"DBSIZE", "x"}) == error("ERR wrong number of arguments for 'dbsize' command"));
  CHECK(kv({"CONFIG"}) == error("ERR wrong number of arguments for 'config' command"));
  CHECK(kv({"CONFIG", "GET"}) == error("ERR wrong number of arguments for 'config|get' command"));
  CHECK(kv({"config", "foo"}) == error("ERR unknown subcommand 'foo'. Try CONFIG HELP."));
  CHECK(kv({"command", "foo"}) == error("ERR unknown subcommand 'foo'. Try COMMAND HELP."));
  CHECK(kv({"COMMAND", "COUNT", "x"}) == error("ERR wrong number of arguments for 'command|count' command"));
  CHECK(kv({"FLUSHALL", "now"}) == error("ERR syntax error"));
  CHECK(kv({"FLUSHALL", "SYNC", "x"}) == error("ERR syntax error"));
}

TEST_CASE("kv commands: the connection's own commands") {
  service<kv::v1::Store> kv(1);
  CHECK(kv({"PING"}) == "+PONG\r\n");
  CHECK(kv({"ping", "hi"}) == "$2\r\nhi\r\n");
  CHECK(kv({"ECHO", "x y"}) == "$3\r\nx y\r\n");
  CHECK(kv({"SELECT", "16"}) == error("ERR DB index is out of range"));
  CHECK(kv({"SELECT", "-1"}) == error("ERR DB index is out of range"));
  CHECK(kv({"SELECT", "x"}) == error("ERR value is not an integer or out of range"));
  CHECK(kv({"SELECT", "2147483648"}) ==
        error("ERR value is out of range, value must between -2147483648 and 2147483647"));
  CHECK(kv({"SET", "k", "zero"}) == "+OK\r\n");
  CHECK(kv({"SELECT", "15"}) == "+OK\r\n");
  CHECK(kv.state.db == 15);
  CHECK(kv({"GET", "k"}) == "$-1\r\n");  // each database its own keys
  CHECK(kv({"SET", "k", "fifteen"}) == "+OK\r\n");
  CHECK(kv({"DBSIZE"}) == ":1\r\n");
  CHECK(kv({"SELECT", "0"}) == "+OK\r\n");
  CHECK(kv({"GET", "k"}) == "$4\r\nzero\r\n");
  // redis-benchmark asks these at start.
  CHECK(kv({"CONFIG", "GET", "save"}) == "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  CHECK(kv({"CONFIG", "GET", "appendonly"}) == "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
  CHECK(kv({"CONFIG", "GET", "nothing"}) == "*0\r\n");
  CHECK(kv({"CONFIG", "GET", "AppendOnly"}) == "*2\r\n$10\r\nAppendOnly\r\n$2\r\nno\r\n");  // as given
  CHECK(kv({"CONFIG", "GET", "APPEND*", "sav?"}) == "*4\r\n$10\r\nappendonly\r\n$2\r\nno\r\n$4\r\nsave\r\n$0\r\n\r\n");
  // redis-cli's start (interactive): COMMAND DOCS, an array of name, docs pairs.
  const auto docs = kv({"COMMAND", "DOCS"});
  CHECK(docs.starts_with(kv::reply::array_header(2 * 26)));
  CHECK(docs.find("$3\r\nget\r\n*6\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n") != std::string::npos);
  CHECK(kv({"COMMAND", "DOCS", "get", "nothing"}) ==
        "*2\r\n$3\r\nget\r\n*6\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n$5\r\nsince\r\n$5\r\n1.0."
        "0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n");
  CHECK(kv({"COMMAND", "COUNT"}) == ":26\r\n");
  CHECK(kv({"COMMAND"}).starts_with("*26\r\n*10\r\n$7\r\ncommand\r\n:-1\r\n"));
  CHECK(
      kv({"COMMAND", "INFO", "get", "nothing"}) ==
      "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n$-1\r\n");
  service<kv::v2::Store> kv2(2);
  CHECK(kv2({"COMMAND", "COUNT"}) == ":29\r\n");
  // INFO: the fields the caller gives.
  kv.env.info = [] {
    kv::info_fields fields;
    fields.connected_clients = 3;
    fields.total_connections_received = 7;
    fields.used_memory = 1024;
    fields.keys[0] = 2;
    fields.keys[15] = 1;
    fields.expires[15] = 1;
    return fields;
  };
  CHECK(kv({"INFO"}) ==
        kv::reply::bulk("# Server\r\nredis_version:7.0.15\r\n\r\n# Clients\r\nconnected_clients:3\r\n"
                        "\r\n# Memory\r\nused_memory:1024\r\n\r\n# Stats\r\ntotal_connections_received:7\r\n"
                        "\r\n# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\ndb15:keys=1,expires=1,avg_ttl=0\r\n"));
  CHECK(kv({"INFO", "clients"}) == kv::reply::bulk("# Clients\r\nconnected_clients:3\r\n"));
  CHECK(kv({"INFO", "stats"}) == kv::reply::bulk("# Stats\r\ntotal_connections_received:7\r\n"));
  CHECK(kv({"INFO", "nothing"}) == kv::reply::bulk(""));
  // QUIT says OK, then the connection closes.
  bool close = false;
  CHECK(kv::run(
            kv.state, {"QUIT"}, kv.env, [](std::size_t, std::size_t, const argv_t&) { return std::string(); },
            &close) == "+OK\r\n");
  CHECK(close);
}

TEST_CASE("kv commands: a key goes to its shard; MGET, MSET, DEL, EXISTS, KEYS, DBSIZE, FLUSHALL span them") {
  service<kv::v1::Store> kv(1, 4);
  CHECK(kv::shard_of("foo", 4) == kv::shard_of("foo", 4));
  CHECK(kv::shard_of("", 1) == 0);
  // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c: the hash is the published one, stable across builds.
  CHECK(kv::shard_of("a", 1u << 31) == (0xaf63dc4c8601ec8cull % (1u << 31)));
  argv_t mset{"MSET"};
  for (int i = 0; i < 40; ++i) mset.push_back("key:" + std::to_string(i)), mset.push_back(std::to_string(i));
  CHECK(kv(mset) == "+OK\r\n");
  for (int i = 0; i < 40; ++i) {
    const auto shard = kv::shard_of("key:" + std::to_string(i), 4);
    CHECK(kv.stores[shard].dbs[0].count("key:" + std::to_string(i)) == 1);
  }
  std::size_t used = 0;
  for (const auto& store : kv.stores) used += store.dbs[0].empty() ? 0 : 1;
  CHECK(used > 1);
  CHECK(kv({"DBSIZE"}) == ":40\r\n");
  CHECK(kv({"MGET", "key:1", "none", "key:39"}) == "*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n39\r\n");
  const auto keys = kv({"KEYS", "key:1?"});
  CHECK(keys.starts_with("*10\r\n"));
  for (int i = 10; i < 20; ++i) CHECK(keys.find(kv::reply::bulk("key:" + std::to_string(i))) != std::string::npos);
  CHECK(kv({"KEYS", "nothing*"}) == "*0\r\n");
  CHECK(kv({"DEL", "key:1", "key:2", "none"}) == ":2\r\n");
  CHECK(kv({"EXISTS", "key:1", "key:3", "key:3"}) == ":2\r\n");
  CHECK(kv({"SELECT", "1"}) == "+OK\r\n");
  CHECK(kv({"SET", "x", "y"}) == "+OK\r\n");
  CHECK(kv({"FLUSHDB"}) == "+OK\r\n");
  CHECK(kv({"DBSIZE"}) == ":0\r\n");
  CHECK(kv({"SET", "x", "y"}) == "+OK\r\n");
  CHECK(kv({"FLUSHALL", "ASYNC"}) == "+OK\r\n");
  CHECK(kv({"DBSIZE"}) == ":0\r\n");
  CHECK(kv({"SELECT", "0"}) == "+OK\r\n");
  CHECK(kv({"DBSIZE"}) == ":0\r\n");
  // A shard's error reaches the client whole.
  CHECK(kv::combine_replies(kv::combine::sum, {":1\r\n", "-ERR broken\r\n"}) == "-ERR broken\r\n");
  CHECK(kv::combine_replies(kv::combine::concat, {"*1\r\n$1\r\na\r\n", "*0\r\n", "*1\r\n$1\r\nb\r\n"}) ==
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
}

TEST_CASE("kv commands: a shard checks what it is asked to run") {
  kv::v1::Store store;
  CHECK(kv::execute(store, 0, {}, 0) == error("ERR empty command"));
  CHECK(kv::execute(store, 16, {"GET", "k"}, 0) == error("ERR DB index is out of range"));
  CHECK(kv::execute(store, 0, {"GET"}, 0).starts_with("-ERR shard cannot run 'GET'"));
  CHECK(kv::execute(store, 0, {"EXPIRE", "k", "1"}, 0).starts_with("-ERR shard cannot run"));  // kv 1's store
  CHECK(kv::execute(store, 0, {"MGET", "k"}, 0) == "$-1\r\n");
}

// -- the schema --

TEST_CASE("kv store: a kv 1 store migrates to kv 2 (no expiry) and back (expiry dropped)") {
  static_assert(hotswap::vsn_of<kv::v2::Value> == 2 && hotswap::vsn_of<kv::v2::Store> == 2);
  static_assert(hotswap::migrates<kv::v1::Store, kv::v2::Store> && hotswap::migrates<kv::v2::Store, kv::v1::Store>);
  static_assert(hotswap::field_diff<kv::v1::Value, kv::v2::Value>::added[0] == "expires_at");
  // A connection's parser and session are plain aggregates: they can be fields of a connection
  // server's state schema, handed on across an upgrade.
  static_assert(hotswap::field_count<kv::request_parser> == 13 && hotswap::field_count<kv::session> == 1);
  service<kv::v1::Store> one(1, 2);
  CHECK(one({"SET", "s", "text"}) == "+OK\r\n");
  CHECK(one({"RPUSH", "l", "a", "b"}) == ":2\r\n");
  CHECK(one({"LPUSH", "l", "z"}) == ":3\r\n");
  CHECK(one({"SELECT", "3"}) == "+OK\r\n");
  CHECK(one({"SET", "s", "db3"}) == "+OK\r\n");

  service<kv::v2::Store> two(2, 2);
  for (std::size_t shard = 0; shard < 2; ++shard)
    two.stores[shard] = hotswap::migrate<kv::v2::Store>(std::move(one.stores[shard]));
  CHECK(two({"GET", "s"}) == "$4\r\ntext\r\n");
  CHECK(two({"TTL", "s"}) == ":-1\r\n");
  CHECK(two({"LRANGE", "l", "0", "-1"}) == "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n");
  CHECK(two({"SELECT", "3"}) == "+OK\r\n");
  CHECK(two({"GET", "s"}) == "$3\r\ndb3\r\n");
  CHECK(two({"EXPIRE", "s", "100"}) == ":1\r\n");
  CHECK(two({"TTL", "s"}) == ":100\r\n");

  service<kv::v1::Store> back(1, 2);
  for (std::size_t shard = 0; shard < 2; ++shard)
    back.stores[shard] = hotswap::migrate<kv::v1::Store>(two.stores[shard]);  // a copy: kv 2's stays
  CHECK(back({"SELECT", "3"}) == "+OK\r\n");
  CHECK(back({"GET", "s"}) == "$3\r\ndb3\r\n");  // its expiry is dropped: the key stays
  CHECK(back({"SELECT", "0"}) == "+OK\r\n");
  CHECK(back({"LRANGE", "l", "0", "-1"}) == "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n");
  CHECK(back({"DBSIZE"}) == ":2\r\n");
}
