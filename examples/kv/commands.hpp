// The connection side of the kv service: the command table (names, arities as Redis declares
// them, where each command runs), the commands a connection answers itself, and the routing of
// the others to the shards that hold their keys, with their replies combined.
//
// Nothing here knows servers: prepare() turns a command into a plan (a reply already, or shard
// requests and how to combine their replies); whoever holds the shards runs the requests and
// hands the replies to combine(). run() does both with a callable for the shards, as the tests do.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "resp.hpp"
#include "store.hpp"

namespace kv {

/// Where a command runs.
enum class route : std::uint8_t {
  connection,  ///< answered by the connection (PING, SELECT, ...)
  one_key,     ///< on the shard of its key (argv[1])
  per_key,     ///< each key on its shard, the replies combined (MGET, MSET, DEL, EXISTS)
  all_shards,  ///< on every shard, the replies combined (KEYS, DBSIZE, FLUSHALL, FLUSHDB)
};

/// How the shards' replies become the client's.
enum class combine : std::uint8_t {
  single,  ///< the one reply as it is
  array,   ///< an array of the replies (MGET)
  sum,     ///< the integers summed (DEL, EXISTS, DBSIZE)
  ok,      ///< +OK, or the first error (MSET, FLUSHALL)
  concat,  ///< the arrays' elements in one array (KEYS)
};

struct command_spec {
  std::string_view name;  ///< lower case, as Redis declares it
  int arity;              ///< Redis's: n exactly when positive, at least -n when negative
  kv::route route;
  int release;  ///< the kv release that brings it: 2 for the expiry commands
  /// per_key: the arguments each key takes (MSET: 2) and the shard-side command per key.
  int key_step = 1;
  std::string_view shard_command = {};
  kv::combine combine = kv::combine::single;
  // For COMMAND and COMMAND DOCS (redis-cli's help and hints).
  std::string_view flags = {};
  std::string_view group = {};
  std::string_view summary = {};
  std::string_view since = {};
};

/// The table, sorted by name.
inline constexpr std::array commands{
    command_spec{"command",
                 -1,
                 route::connection,
                 1,
                 1,
                 {},
                 combine::single,
                 "loading stale",
                 "server",
                 "Get array of Redis command details",
                 "2.8.13"},
    command_spec{"config",
                 -2,
                 route::connection,
                 1,
                 1,
                 {},
                 combine::single,
                 "",
                 "server",
                 "A container for server configuration commands",
                 "2.0.0"},
    command_spec{"dbsize", 1, route::all_shards, 1, 1, "DBSIZE", combine::sum, "readonly fast", "server",
                 "Return the number of keys in the selected database", "1.0.0"},
    command_spec{"decr",
                 2,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write denyoom fast",
                 "string",
                 "Decrement the integer value of a key by one",
                 "1.0.0"},
    command_spec{"del", -2, route::per_key, 1, 1, "DEL", combine::sum, "write", "generic", "Delete a key", "1.0.0"},
    command_spec{"echo",
                 2,
                 route::connection,
                 1,
                 1,
                 {},
                 combine::single,
                 "loading stale fast",
                 "connection",
                 "Echo the given string",
                 "1.0.0"},
    command_spec{"exists", -2, route::per_key, 1, 1, "EXISTS", combine::sum, "readonly fast", "generic",
                 "Determine if a key exists", "1.0.0"},
    command_spec{"expire",
                 -3,
                 route::one_key,
                 2,
                 1,
                 {},
                 combine::single,
                 "write fast",
                 "generic",
                 "Set a key's time to live in seconds",
                 "1.0.0"},
    command_spec{"flushall", -1, route::all_shards, 1, 1, "FLUSHALL", combine::ok, "write", "server",
                 "Remove all keys from all databases", "1.0.0"},
    command_spec{"flushdb", -1, route::all_shards, 1, 1, "FLUSHDB", combine::ok, "write", "server",
                 "Remove all keys from the current database", "1.0.0"},
    command_spec{"get",
                 2,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "readonly fast",
                 "string",
                 "Get the value of a key",
                 "1.0.0"},
    command_spec{"getset",
                 3,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write denyoom fast",
                 "string",
                 "Set the string value of a key and return its old value",
                 "1.0.0"},
    command_spec{"incr",
                 2,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write denyoom fast",
                 "string",
                 "Increment the integer value of a key by one",
                 "1.0.0"},
    command_spec{"incrby",
                 3,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write denyoom fast",
                 "string",
                 "Increment the integer value of a key by the given amount",
                 "1.0.0"},
    command_spec{"info",
                 -1,
                 route::connection,
                 1,
                 1,
                 {},
                 combine::single,
                 "loading stale",
                 "server",
                 "Get information and statistics about the server",
                 "1.0.0"},
    command_spec{"keys", 2, route::all_shards, 1, 1, "KEYS", combine::concat, "readonly", "generic",
                 "Find all keys matching the given pattern", "1.0.0"},
    command_spec{"lpop",
                 -2,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write fast",
                 "list",
                 "Remove and get the first elements in a list",
                 "1.0.0"},
    command_spec{"lpush",
                 -3,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write denyoom fast",
                 "list",
                 "Prepend one or multiple elements to a list",
                 "1.0.0"},
    command_spec{"lrange",
                 4,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "readonly",
                 "list",
                 "Get a range of elements from a list",
                 "1.0.0"},
    command_spec{"mget", -2, route::per_key, 1, 1, "MGET", combine::array, "readonly fast", "string",
                 "Get the values of all the given keys", "1.0.0"},
    command_spec{"mset", -3, route::per_key, 1, 2, "SET", combine::ok, "write denyoom", "string",
                 "Set multiple keys to multiple values", "1.0.1"},
    command_spec{"persist",
                 2,
                 route::one_key,
                 2,
                 1,
                 {},
                 combine::single,
                 "write fast",
                 "generic",
                 "Remove the expiration from a key",
                 "2.2.0"},
    command_spec{
        "ping", -1, route::connection, 1, 1, {}, combine::single, "fast", "connection", "Ping the server", "1.0.0"},
    command_spec{"quit",
                 -1,
                 route::connection,
                 1,
                 1,
                 {},
                 combine::single,
                 "noscript loading stale fast",
                 "connection",
                 "Close the connection",
                 "1.0.0"},
    command_spec{"rpop",
                 -2,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write fast",
                 "list",
                 "Remove and get the last elements in a list",
                 "1.0.0"},
    command_spec{"rpush",
                 -3,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write denyoom fast",
                 "list",
                 "Append one or multiple elements to a list",
                 "1.0.0"},
    command_spec{"select",
                 2,
                 route::connection,
                 1,
                 1,
                 {},
                 combine::single,
                 "loading stale fast",
                 "connection",
                 "Change the selected database for the current connection",
                 "1.0.0"},
    command_spec{"set",
                 -3,
                 route::one_key,
                 1,
                 1,
                 {},
                 combine::single,
                 "write denyoom",
                 "string",
                 "Set the string value of a key",
                 "1.0.0"},
    command_spec{"ttl",
                 2,
                 route::one_key,
                 2,
                 1,
                 {},
                 combine::single,
                 "readonly fast",
                 "generic",
                 "Get the time to live for a key in seconds",
                 "1.0.0"},
};

/// Subcommands of the two containers, with Redis's arities.
struct subcommand_spec {
  std::string_view container, name;
  int arity;
};
inline constexpr std::array subcommands{
    subcommand_spec{"command", "count", 2},
    subcommand_spec{"command", "docs", -2},
    subcommand_spec{"command", "info", -2},
    subcommand_spec{"config", "get", -3},
};

/// The command named `name` (any case) in release `release`'s table, if any.
inline const command_spec* find_command(std::string_view name, int release) {
  for (const auto& spec : commands)
    if (spec.release <= release && spec.name.size() == name.size() &&
        std::equal(name.begin(), name.end(), spec.name.begin(),
                   [](char a, char b) { return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b; }))
      return &spec;
  return nullptr;
}

/// The shard that holds `key`: FNV-1a 64 of its bytes, the same on every build and platform.
inline std::size_t shard_of(std::string_view key, std::size_t shards) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char c : key) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return static_cast<std::size_t>(hash % std::max<std::size_t>(shards, 1));
}

/// A connection's own state: its selected database.
struct session {
  std::uint8_t db = 0;
};

/// What INFO shows; the caller gives it.
struct info_fields {
  std::string redis_version = "7.0.15";
  std::uint64_t connected_clients = 0;           ///< connections open now
  std::uint64_t total_connections_received = 0;  ///< connections accepted since the start
  std::uint64_t used_memory = 0;
  std::array<std::uint64_t, databases> keys{};
  std::array<std::uint64_t, databases> expires{};
};

/// What the connection's commands need from around them.
struct environment {
  int release = 1;                         ///< the kv release whose commands are served (2 adds expiry)
  std::size_t shards = 1;                  ///< the shard count: a key's shard is shard_of(key, shards)
  std::function<info_fields()> info = {};  ///< asked by INFO only
};

/// A command for shard `shard`, on database `db`: what kv::execute runs there.
struct shard_request {
  std::size_t shard = 0;
  std::uint8_t db = 0;
  std::vector<std::string> argv;
};

/// What a command takes: either its reply (`requests` empty), or shard requests whose replies,
/// in the same order, combine into the reply.
struct plan {
  std::string reply;
  std::vector<shard_request> requests;
  kv::combine combine = kv::combine::single;
  bool close = false;  ///< close the connection once the reply is sent (QUIT)
};

namespace detail {

inline std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}
inline std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

/// A C string's view of an argument: Redis formats its errors with printf, which stops at a NUL.
inline std::string_view c_string(std::string_view text) {
  return text.substr(0, text.find('\0'));
}

inline std::string unknown_command(const std::vector<std::string>& argv) {
  std::string args;
  for (std::size_t i = 1; i < argv.size() && args.size() < 128; ++i)
    args += fmt::format("'{}' ", c_string(argv[i]).substr(0, 128 - args.size()));
  return reply::error(
      fmt::format("ERR unknown command '{}', with args beginning with: {}", c_string(argv[0]).substr(0, 128), args));
}

inline bool arity_fits(int arity, std::size_t argc) {
  return arity > 0 ? argc == static_cast<std::size_t>(arity) : argc >= static_cast<std::size_t>(-arity);
}

inline std::string command_entry(const command_spec& spec) {
  std::vector<std::string_view> flags;
  for (std::size_t at = 0; at < spec.flags.size();) {
    const auto end = std::min(spec.flags.find(' ', at), spec.flags.size());
    if (end > at) flags.push_back(spec.flags.substr(at, end - at));
    at = end + 1;
  }
  int first = 0, last = 0, step = 0;
  if (spec.route == route::one_key) first = last = step = 1;
  if (spec.route == route::per_key) first = 1, last = -1, step = spec.key_step;
  std::string out = reply::array_header(10);
  out += reply::bulk(spec.name);
  out += reply::integer(spec.arity);
  out += reply::array_header(flags.size());
  for (const auto flag : flags) out += reply::simple(flag);
  out += reply::integer(first) + reply::integer(last) + reply::integer(step);
  for (int empty = 0; empty < 4; ++empty) out += reply::array_header(0);  // acl, tips, key specs, subcommands
  return out;
}

inline std::string command_docs(const command_spec& spec) {
  return reply::bulk(spec.name) + reply::array_header(6) + reply::bulk("summary") + reply::bulk(spec.summary) +
         reply::bulk("since") + reply::bulk(spec.since) + reply::bulk("group") + reply::bulk(spec.group);
}

inline std::string command_command(const std::vector<std::string>& argv, int release) {
  std::vector<const command_spec*> listed;
  for (const auto& spec : commands)
    if (spec.release <= release) listed.push_back(&spec);
  if (argv.size() == 1) {
    std::string out = reply::array_header(listed.size());
    for (const auto* spec : listed) out += command_entry(*spec);
    return out;
  }
  const auto sub = lower(argv[1]);
  if (sub == "count") return reply::integer(static_cast<std::int64_t>(listed.size()));
  if (sub == "info") {
    if (argv.size() == 2) return command_command({argv[0]}, release);
    std::string out = reply::array_header(argv.size() - 2);
    for (std::size_t i = 2; i < argv.size(); ++i) {
      const auto* spec = find_command(argv[i], release);
      out += spec != nullptr ? command_entry(*spec) : reply::null_bulk();
    }
    return out;
  }
  // docs: a map, in RESP2 an array of name, docs pairs; names it does not know are left out.
  std::vector<const command_spec*> asked;
  if (argv.size() == 2) {
    asked = listed;
  } else {
    for (std::size_t i = 2; i < argv.size(); ++i)
      if (const auto* spec = find_command(argv[i], release)) asked.push_back(spec);
  }
  std::string out = reply::array_header(2 * asked.size());
  for (const auto* spec : asked) out += command_docs(*spec);
  return out;
}

/// CONFIG GET: the service keeps nothing on disk, so it answers redis-benchmark's questions as a
/// redis-server with `save ""` and `appendonly no` does.
inline std::string config_get(const std::vector<std::string>& argv) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 2> settings{{
      {"save", ""},
      {"appendonly", "no"},
  }};
  // As Redis: a name is looked up ignoring case and answered as given; a pattern (with `[*?`) is
  // matched ignoring case against every name, answered with the setting's own name; each once.
  std::vector<std::pair<std::string, std::string_view>> found;
  const auto add = [&](std::string name, std::string_view value) {
    if (std::none_of(found.begin(), found.end(), [&](const auto& entry) { return entry.first == name; }))
      found.emplace_back(std::move(name), value);
  };
  for (std::size_t i = 2; i < argv.size(); ++i) {
    const auto pattern = lower(argv[i]);
    const bool glob = pattern.find_first_of("[*?") != std::string::npos;
    for (const auto& [name, value] : settings) {
      if (glob && glob_match(pattern, name)) add(std::string(name), value);
      if (!glob && pattern == name) add(argv[i], value);
    }
  }
  std::string out = reply::array_header(2 * found.size());
  for (const auto& [name, value] : found) out += reply::bulk(name) + reply::bulk(value);
  return out;
}

inline std::string info(const std::vector<std::string>& argv, const environment& env) {
  const info_fields fields = env.info ? env.info() : info_fields{};
  bool all = argv.size() == 1;
  std::vector<std::string> sections;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    auto section = lower(argv[i]);
    all = all || section == "default" || section == "all" || section == "everything";
    sections.push_back(std::move(section));
  }
  const auto wanted = [&](std::string_view section) {
    return all || std::find(sections.begin(), sections.end(), section) != sections.end();
  };
  std::string text;
  const auto open = [&](std::string_view title) {
    if (!text.empty()) text += "\r\n";
    text += fmt::format("# {}\r\n", title);
  };
  if (wanted("server")) open("Server"), text += fmt::format("redis_version:{}\r\n", fields.redis_version);
  if (wanted("clients")) open("Clients"), text += fmt::format("connected_clients:{}\r\n", fields.connected_clients);
  if (wanted("memory")) open("Memory"), text += fmt::format("used_memory:{}\r\n", fields.used_memory);
  if (wanted("stats"))
    open("Stats"), text += fmt::format("total_connections_received:{}\r\n", fields.total_connections_received);
  if (wanted("keyspace")) {
    open("Keyspace");
    for (std::size_t db = 0; db < databases; ++db)
      if (fields.keys[db] > 0)
        text += fmt::format("db{}:keys={},expires={},avg_ttl=0\r\n", db, fields.keys[db], fields.expires[db]);
  }
  return reply::bulk(text);
}

inline std::string select(session& state, const std::string& index) {
  const auto parsed = parse_integer(index);
  if (!parsed) return reply::error("ERR value is not an integer or out of range");
  if (*parsed < std::numeric_limits<int>::min() || *parsed > std::numeric_limits<int>::max())
    return reply::error(fmt::format("ERR value is out of range, value must between {} and {}",
                                    std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  if (*parsed < 0 || *parsed >= static_cast<std::int64_t>(databases))
    return reply::error("ERR DB index is out of range");
  state.db = static_cast<std::uint8_t>(*parsed);
  return reply::ok;
}

/// An integer reply's value; none for anything else (an error).
inline std::optional<std::int64_t> integer_of(std::string_view reply) {
  if (reply.size() < 3 || reply[0] != ':' || reply.substr(reply.size() - 2) != "\r\n") return std::nullopt;
  return parse_integer(reply.substr(1, reply.size() - 3));
}

}  // namespace detail

/// What the command `argv` takes, for a connection in `state`.
inline plan prepare(session& state, std::vector<std::string> argv, const environment& env) {
  plan out;
  if (argv.empty()) return out;  // no command: nothing to answer
  const auto* spec = find_command(argv[0], env.release);
  if (spec == nullptr) {
    out.reply = detail::unknown_command(argv);
    return out;
  }
  // The containers: a subcommand Redis does not know here is an error naming the container.
  if ((spec->name == "command" || spec->name == "config") && argv.size() >= 2) {
    const auto sub = detail::lower(argv[1]);
    const auto known = std::find_if(subcommands.begin(), subcommands.end(), [&](const subcommand_spec& s) {
      return s.container == spec->name && s.name == sub;
    });
    if (known == subcommands.end()) {
      out.reply = reply::error(fmt::format("ERR unknown subcommand '{}'. Try {} HELP.",
                                           detail::c_string(argv[1]).substr(0, 128), detail::upper(argv[0])));
      return out;
    }
    if (!detail::arity_fits(known->arity, argv.size())) {
      out.reply = detail::arity_error(fmt::format("{}|{}", spec->name, known->name));
      return out;
    }
  } else if (!detail::arity_fits(spec->arity, argv.size())) {
    out.reply = detail::arity_error(spec->name);
    return out;
  }
  // Each request's shard is hashed from its key before the arguments move into it: no key is copied.
  const auto request = [&](std::vector<std::string> shard_argv) {
    const auto shard = shard_of(shard_argv[1], env.shards);
    out.requests.push_back({shard, state.db, std::move(shard_argv)});
  };
  switch (spec->route) {
    case route::connection: {
      const auto& name = spec->name;
      if (name == "ping") {
        out.reply = argv.size() > 2    ? detail::arity_error("ping")
                    : argv.size() == 2 ? reply::bulk(argv[1])
                                       : reply::simple("PONG");
      } else if (name == "echo") {
        out.reply = reply::bulk(argv[1]);
      } else if (name == "select") {
        out.reply = detail::select(state, argv[1]);
      } else if (name == "quit") {
        out.reply = reply::ok;
        out.close = true;
      } else if (name == "command") {
        out.reply = detail::command_command(argv, env.release);
      } else if (name == "config") {
        out.reply = detail::config_get(argv);
      } else if (name == "info") {
        out.reply = detail::info(argv, env);
      }
      return out;
    }
    case route::one_key: {
      request(std::move(argv));
      return out;
    }
    case route::per_key: {
      // MSET k v [k v ...]: an even count of arguments after the name.
      if (spec->key_step == 2 && argv.size() % 2 == 0) {
        out.reply = detail::arity_error(spec->name);
        return out;
      }
      out.combine = spec->combine;
      const auto step = static_cast<std::size_t>(spec->key_step);
      out.requests.reserve((argv.size() - 1) / step);
      for (std::size_t i = 1; i + step - 1 < argv.size(); i += step) {
        std::vector<std::string> one{std::string(spec->shard_command), std::move(argv[i])};
        if (step == 2) one.push_back(std::move(argv[i + 1]));
        request(std::move(one));
      }
      return out;
    }
    case route::all_shards: {
      if ((spec->name == "flushall" || spec->name == "flushdb") && argv.size() > 1 &&
          !(argv.size() == 2 && (detail::is(argv[1], "SYNC") || detail::is(argv[1], "ASYNC")))) {
        out.reply = detail::syntax_error;
        return out;
      }
      out.combine = spec->combine;
      for (std::size_t shard = 0; shard < std::max<std::size_t>(env.shards, 1); ++shard) {
        std::vector<std::string> one{std::string(spec->shard_command)};
        if (spec->name == "keys") one.push_back(argv[1]);
        out.requests.push_back({shard, state.db, std::move(one)});
      }
      return out;
    }
  }
  return out;
}

/// The client's reply from the shards' replies to a plan's requests, in their order.
inline std::string combine_replies(kv::combine how, std::vector<std::string> replies) {
  switch (how) {
    case combine::single:
      return replies.empty() ? reply::error("ERR no reply") : std::move(replies.front());
    case combine::array: {
      std::string out = reply::array_header(replies.size());
      for (const auto& one : replies) out += one;
      return out;
    }
    case combine::sum: {
      std::int64_t total = 0;
      for (const auto& one : replies) {
        const auto value = detail::integer_of(one);
        if (!value) return one.starts_with('-') ? one : reply::error("ERR a shard's reply is not an integer");
        total += *value;
      }
      return reply::integer(total);
    }
    case combine::ok:
      for (const auto& one : replies)
        if (one != reply::ok) return one.starts_with('-') ? one : reply::error("ERR a shard's reply is not OK");
      return reply::ok;
    case combine::concat: {
      std::size_t total = 0;
      std::string body;
      for (const auto& one : replies) {
        const auto end = one.find("\r\n");
        const auto count = one.starts_with('*') && end != std::string::npos
                               ? parse_integer(std::string_view(one).substr(1, end - 1))
                               : std::nullopt;
        if (!count || *count < 0)
          return one.starts_with('-') ? one : reply::error("ERR a shard's reply is not an array");
        total += static_cast<std::size_t>(*count);
        body.append(one, end + 2);
      }
      return reply::array_header(total) + body;
    }
  }
  return reply::error("ERR unknown combination");
}

/// prepare(), the requests run by `shard(shard_index, db, argv)` (which returns the shard's
/// reply), then combine_replies(): the whole command, synchronously. `close` is set for QUIT.
template <class Shard>
std::string run(session& state, std::vector<std::string> argv, const environment& env, Shard&& shard,
                bool* close = nullptr) {
  plan todo = prepare(state, std::move(argv), env);
  if (close != nullptr) *close = todo.close;
  if (todo.requests.empty()) return std::move(todo.reply);
  std::vector<std::string> replies;
  replies.reserve(todo.requests.size());
  for (const auto& request : todo.requests)
    replies.push_back(std::invoke(shard, request.shard, static_cast<std::size_t>(request.db), request.argv));
  return combine_replies(todo.combine, std::move(replies));
}

}  // namespace kv
