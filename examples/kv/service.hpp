// The kv service's servers, built into its modules (shard_v1.cpp, shard_v2.cpp, connection_v1.cpp,
// connection_v2.cpp) and named by its program (main.cpp): a shard holds one part of the store and
// runs what kv::execute runs; a connection parses its client's requests and hands each to the
// shards that hold its keys.
//
// A connection never waits for a shard in a handler: it sends its requests with
// hotswap::send_request(shard, request, self) and the replies come back as infos; one request a
// shard for the commands parsed from one read (a pipeline's sixteen SETs are one message to each
// shard, not sixteen). A release
// suspends every connection and every shard as one transaction, in parallel: a connection
// blocked in a call to a shard already suspended could not be suspended itself, and the upgrade
// would time out. So the commands in flight are part of the connection's state, and their
// replies, arriving while it is suspended, are handled by its new code after the resume.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <hotswap/hotswap.hpp>
#include <hotswap/net.hpp>

#include "commands.hpp"
#include "resp.hpp"
#include "store.hpp"

namespace kv {

/// A shard's part of a command: kv::execute(store, db, argv).
struct ShardCommand {
  std::uint8_t db = 0;
  std::vector<std::string> argv;
};
/// A shard's parts of the commands one read brought, run in order; answered a reply each.
struct ShardRequest {
  std::vector<ShardCommand> commands;
};

/// What a connection's server starts from: its connection and the program's shard count.
struct ConnectionStart {
  hotswap::net::connection conn;
  std::uint64_t shards = 1;
};

/// INFO's question to the program (the server registered as stats_name): its listener's counters.
struct StatsQuery {};
struct Stats {
  std::uint64_t accepted = 0;  ///< connections accepted since the start
  std::uint64_t open = 0;      ///< of them, those open now
};

/// A command whose reply is not sent yet: its reply already, or where its parts went (the shard
/// request of each, and its place in that request's replies) and the replies come so far.
struct InFlight {
  std::string reply;                    ///< the client's reply, once complete
  std::vector<std::uint64_t> requests;  ///< send_request's ids, in the plan's order (0: answered)
  std::vector<std::uint32_t> places;    ///< the part's place in its request's replies
  std::vector<std::string> replies;     ///< the shards' replies, by the same index
  std::uint64_t awaited = 0;            ///< replies still to come
  kv::combine how = kv::combine::single;
  bool close = false;  ///< QUIT, or a protocol error: close once the reply is sent
};

/// A connection's server's state: what it keeps across an upgrade. Plain data (the connection
/// is the runtime's handle): handed on as it is between kv 1's code and kv 2's, it pins neither.
struct ConnectionState {
  hotswap::net::connection conn;
  request_parser parser;
  session client;
  std::uint64_t shards = 1;
  std::vector<InFlight> in_flight;  ///< in the order received: the replies go out in it
  bool closing = false;             ///< a command that closes is in flight: nothing more is parsed
};

}  // namespace kv

// The state's parts as schemas of their own (each a version 1): what the state's fingerprint is
// made of, so that a later version of one is a migration, not a silent change.
template <>
struct hotswap::schema_of<kv::request_parser>
    : hotswap::schema<"kv.RequestParser", hotswap::version<1, kv::request_parser>> {};
template <>
struct hotswap::schema_of<kv::session> : hotswap::schema<"kv.Session", hotswap::version<1, kv::session>> {};
template <>
struct hotswap::schema_of<kv::InFlight> : hotswap::schema<"kv.InFlight", hotswap::version<1, kv::InFlight>> {};
template <>
struct hotswap::schema_of<kv::ConnectionState>
    : hotswap::schema<"kv.Connection", hotswap::version<1, kv::ConnectionState>> {};

namespace kv {

using ShardReplies = std::vector<std::string>;
using ShardInterface = hotswap::interface<"kv.Shard", hotswap::call_msg<ShardRequest, ShardReplies>>;
using ConnectionInterface =
    hotswap::interface<"kv.Connection", hotswap::info_msg<hotswap::net::data>, hotswap::info_msg<hotswap::net::closed>,
                       hotswap::info_msg<hotswap::response<ShardReplies>>>;

using StatsInterface = hotswap::interface<"kv.Stats", hotswap::call_msg<StatsQuery, Stats>>;
inline constexpr const char* stats_name = "kv.stats";

/// INFO's fields from the program's stats server (zero if it does not answer).
inline info_fields program_info() {
  info_fields fields;
  const auto stats = hotswap::whereis<StatsInterface>(stats_name);
  if (!stats) return fields;
  const auto got = hotswap::call(*stats, StatsQuery{}, std::chrono::seconds(1));
  if (!got) return fields;
  fields.connected_clients = got->open;
  fields.total_connections_received = got->accepted;
  return fields;
}

/// The registered name of shard `index`.
inline std::string shard_name(std::size_t index) {
  return fmt::format("kv.shard.{}", index);
}

/// Commands of one connection in flight at most: past them nothing more is parsed (nor read)
/// until replies come, so a pipelining client is held back, not buffered without bound.
inline constexpr std::size_t max_in_flight = 256;

inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Runs a shard request's commands on `store`, in order.
template <class Store>
ShardReplies execute_all(const ShardRequest& request, Store& store) {
  ShardReplies replies;
  replies.reserve(request.commands.size());
  const auto now = now_ms();
  for (const auto& command : request.commands) replies.push_back(execute(store, command.db, command.argv, now));
  return replies;
}

/// The shard's code, for kv 1's store (strings and lists) and kv 2's (with expiry).
struct ShardV1 {
  using interface = ShardInterface;
  static constexpr int vsn = 1;
  using state = v1::Store;
  static state init() { return {}; }
  static ShardReplies handle_call(const ShardRequest& request, state& store) { return execute_all(request, store); }
};

struct ShardV2 {
  using interface = ShardInterface;
  static constexpr int vsn = 2;
  using state = v2::Store;
  // From kv 1's store, by the schema's steps (no value expires); down again the same way.
  using state_history = hotswap::state_history<hotswap::version<1, v1::Store>>;
  static state init() { return {}; }
  static ShardReplies handle_call(const ShardRequest& request, state& store) { return execute_all(request, store); }
};

namespace detail {

/// Replies held back while others are awaited, at most: past them they are sent at once.
inline constexpr std::size_t max_held_replies = 64 * 1024;

/// Sends what is complete at the front of `s.in_flight`, in order, in one write: once nothing
/// is awaited any more (a pipeline's replies go together, not one small write each, which the
/// client's delayed ACK would hold back), or past max_held_replies. At a command that closes,
/// closes the connection and stops the server.
template <int Release>
void send_ready(ConnectionState& s) {
  std::size_t done = 0, bytes = 0;
  bool close = false;
  for (; done < s.in_flight.size() && s.in_flight[done].awaited == 0 && !close; ++done) {
    bytes += s.in_flight[done].reply.size();
    close = s.in_flight[done].close;
  }
  if (done == 0 || (done < s.in_flight.size() && !close && bytes < max_held_replies)) return;
  std::string out;
  if (done == 1) {
    out = std::move(s.in_flight.front().reply);  // one reply (unpipelined): sent as it is
  } else {
    out.reserve(bytes);
    for (std::size_t i = 0; i < done; ++i) out += s.in_flight[i].reply;
  }
  s.in_flight.erase(s.in_flight.begin(), s.in_flight.begin() + static_cast<std::ptrdiff_t>(done));
  if (!out.empty()) s.conn.send(std::move(out));
  if (close) {
    s.conn.close();
    s.in_flight.clear();
    (void)hotswap::stop(hotswap::self<ConnectionInterface>());  // once this handler returns
  }
}

/// The shard requests of one parse: each shard's parts, and which command's part each is.
struct outgoing {
  std::vector<ShardRequest> requests;                                // by shard
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> of;  // by shard: (command, part)
};

/// Sends each shard its request, and notes its id in the commands' parts (indexes into
/// s.in_flight: nothing is sent to the client between the parse and this).
inline void dispatch(ConnectionState& s, outgoing& out, const hotswap::server_ref<ConnectionInterface>& self) {
  for (std::size_t shard = 0; shard < out.requests.size(); ++shard) {
    if (out.requests[shard].commands.empty()) continue;
    const auto to = hotswap::whereis<ShardInterface>(shard_name(shard));
    const std::uint64_t id = to ? hotswap::send_request(*to, std::move(out.requests[shard]), self) : 0;
    out.requests[shard].commands.clear();
    for (const auto& [index, part] : out.of[shard]) {
      InFlight& command = s.in_flight[index];
      if (id != 0) {
        command.requests[part] = id;
        continue;
      }
      command.replies[part] = reply::error("ERR the shard is not running");
      if (--command.awaited == 0) command.reply = combine_replies(command.how, std::move(command.replies));
    }
    out.of[shard].clear();
  }
}

/// Parses what is buffered into commands and sends their shard requests, up to max_in_flight;
/// then sends the replies ready, and reads more once everything buffered is parsed.
template <int Release>
void serve(ConnectionState& s) {
  const environment env{.release = Release, .shards = static_cast<std::size_t>(s.shards), .info = program_info};
  const auto self = hotswap::self<ConnectionInterface>();
  bool need_more = false;
  outgoing out;
  out.requests.resize(static_cast<std::size_t>(s.shards));
  out.of.resize(static_cast<std::size_t>(s.shards));
  // Parsed until the buffer is used up or max_in_flight commands wait; what is ready is sent,
  // which may make room for more (commands the connection answers itself, say).
  for (;;) {
    while (!s.closing && s.in_flight.size() < max_in_flight) {
      const auto found = s.parser.next();
      if (found == parse_status::need_more) {
        need_more = true;
        break;
      }
      InFlight command;
      if (found == parse_status::error) {
        command.reply = s.parser.error_reply();  // empty past the command's bound: closed without a reply
        command.close = s.closing = true;
        s.in_flight.push_back(std::move(command));
        break;
      }
      plan todo = prepare(s.client, s.parser.take(), env);
      command.close = s.closing = todo.close;
      command.how = todo.combine;
      command.reply = std::move(todo.reply);
      command.awaited = todo.requests.size();
      command.replies.resize(todo.requests.size());
      command.requests.resize(todo.requests.size());
      command.places.resize(todo.requests.size());
      for (std::size_t i = 0; i < todo.requests.size(); ++i) {
        auto& request = todo.requests[i];
        auto& to = out.requests[request.shard];
        command.places[i] = static_cast<std::uint32_t>(to.commands.size());
        to.commands.push_back(ShardCommand{request.db, std::move(request.argv)});
        out.of[request.shard].emplace_back(s.in_flight.size(), i);
      }
      s.in_flight.push_back(std::move(command));
    }
    dispatch(s, out, self);
    send_ready<Release>(s);
    if (need_more || s.closing || s.in_flight.size() >= max_in_flight) break;
  }
  if (need_more && !s.closing && s.conn.open()) s.conn.read_more();
}

template <int Release>
void take_reply(const hotswap::response<ShardReplies>& in, ConnectionState& s) {
  if (in.request == 0) return;
  bool found = false;
  for (auto& command : s.in_flight) {
    for (std::size_t i = 0; i < command.requests.size(); ++i) {
      if (command.requests[i] != in.request) continue;
      found = true;
      command.requests[i] = 0;
      if (!in.reply)
        command.replies[i] =
            reply::error(fmt::format("ERR the shard did not answer: {}", hotswap::to_string(in.reply.error().code)));
      else if (command.places[i] < in.reply->size())
        command.replies[i] = (*in.reply)[command.places[i]];
      else
        command.replies[i] = reply::error("ERR the shard answered fewer replies than it was sent commands");
      if (--command.awaited == 0) command.reply = combine_replies(command.how, std::move(command.replies));
    }
  }
  // A full pipeline may have held back parsing: serve() parses on, then sends what is ready.
  if (found) serve<Release>(s);
}

}  // namespace detail

/// The connection's code: kv 1's commands (Release 1) or kv 2's (with expiry). Both keep the
/// same state, handed on as it is across an upgrade or a downgrade.
template <int Release>
struct Connection {
  using interface = ConnectionInterface;
  static constexpr int vsn = Release;
  using state = ConnectionState;
  static state init(const ConnectionStart& start) {
    state made;
    made.conn = start.conn;
    made.shards = start.shards;
    return made;
  }
  static void handle_info(const hotswap::net::data& in, state& s) {
    s.parser.feed(in.bytes);
    detail::serve<Release>(s);
  }
  static void handle_info(const hotswap::response<ShardReplies>& in, state& s) { detail::take_reply<Release>(in, s); }
  static void handle_info(const hotswap::net::closed&, state&) {
    (void)hotswap::stop(hotswap::self<ConnectionInterface>());
  }
};

using ConnectionV1 = Connection<1>;
using ConnectionV2 = Connection<2>;

}  // namespace kv
