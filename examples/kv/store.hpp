// A shard's state, as hotswap schema types, and what a shard executes: the single-key commands
// and the shard's part of the commands that reach every shard (KEYS, DBSIZE, FLUSHALL).
//
// kv 1 keeps strings and lists; kv 2 adds an expiry to each value. The store holds one map per
// database: SELECT's 16 databases are 16 maps, so a request names its database beside its key
// instead of the key carrying it (no key rebuilt with a prefix on every request, DBSIZE is a map's
// size, KEYS and FLUSHDB touch one map).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include <hotswap/hotswap.hpp>

#include "resp.hpp"

namespace kv {

/// SELECT's databases, 0 to 15, as redis-server's default.
inline constexpr std::size_t databases = 16;

enum class kind : std::uint8_t { string, list };

namespace v1 {
/// A string, or a list: the list's elements are `items[head..]`, so that LPOP and LPUSH after it
/// cost O(1) (LPUSH on a full front grows it by the list's size: amortized O(1)).
struct Value {
  kind type = kind::string;
  std::string text;
  std::vector<std::string> items;
  std::uint64_t head = 0;
};
struct Store {
  std::array<std::unordered_map<std::string, Value>, databases> dbs;
};
}  // namespace v1

namespace v2 {
/// kv 2: a value may expire, at `expires_at` (ms since the epoch; 0: never).
struct Value {
  kind type = kind::string;
  std::string text;
  std::vector<std::string> items;
  std::uint64_t head = 0;
  std::int64_t expires_at = 0;
};
struct Store {
  std::array<std::unordered_map<std::string, Value>, databases> dbs;
};
}  // namespace v2

using ValueSchema = hotswap::schema<"kv.Value", hotswap::version<1, v1::Value>, hotswap::version<2, v2::Value>>;
using StoreSchema = hotswap::schema<"kv.Store", hotswap::version<1, v1::Store>, hotswap::version<2, v2::Store>>;

}  // namespace kv

template <hotswap::listed_in<kv::ValueSchema> T>
struct hotswap::schema_of<T> : kv::ValueSchema {};
template <hotswap::listed_in<kv::StoreSchema> T>
struct hotswap::schema_of<T> : kv::StoreSchema {};

// kv 1 -> 2: no value expires. The store's maps migrate with their values.
template <>
struct hotswap::step<kv::v1::Value, kv::v2::Value> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"expires_at">};
};
// kv 2 -> 1: every expiry is dropped (a key that was to expire stays); the loss is declared.
template <>
struct hotswap::step<kv::v2::Value, kv::v1::Value> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"expires_at">};
};

namespace kv {

// -- KEYS patterns --

/// Redis's glob (stringmatchlen, case-sensitive): `*`, `?`, `[abc]`, `[^a]`, `[a-z]` (a reversed
/// range is swapped), `\x` escapes (also inside brackets); an unclosed `[` runs to the pattern's
/// end. As in Redis an empty key matches only the empty pattern. Each star is tried from the last
/// one only (the classic backtracking of one star), so a match costs at most O(pattern * key),
/// whatever the stars: Redis's recursion, bounded since 7.0.9 the same way.
inline bool glob_match(std::string_view pattern, std::string_view text) {
  if (text.empty()) return pattern.empty();
  // The pattern's element at `p` and where it ends; whether it matches `c`.
  const auto element_end = [&](std::size_t p) -> std::size_t {
    if (pattern[p] == '\\') return p + (p + 1 < pattern.size() ? 2 : 1);
    if (pattern[p] != '[') return p + 1;
    std::size_t q = p + 1;
    if (q < pattern.size() && pattern[q] == '^') ++q;
    while (q < pattern.size()) {
      if (pattern[q] == '\\' && pattern.size() - q >= 2) {
        q += 2;
      } else if (pattern[q] == ']') {
        return q + 1;
      } else if (pattern.size() - q >= 3 && pattern[q + 1] == '-') {
        q += 3;
      } else {
        ++q;
      }
    }
    return q;  // unclosed: to the end
  };
  const auto matches = [&](std::size_t p, char c) -> bool {
    if (pattern[p] == '?') return true;
    if (pattern[p] == '\\') return pattern[p + 1 < pattern.size() ? p + 1 : p] == c;
    if (pattern[p] != '[') return pattern[p] == c;
    std::size_t q = p + 1;
    const bool negated = q < pattern.size() && pattern[q] == '^';
    if (negated) ++q;
    bool match = false;
    while (q < pattern.size()) {
      if (pattern[q] == '\\' && pattern.size() - q >= 2) {
        match = match || pattern[q + 1] == c;
        q += 2;
      } else if (pattern[q] == ']') {
        break;
      } else if (pattern.size() - q >= 3 && pattern[q + 1] == '-') {
        int low = pattern[q], high = pattern[q + 2];
        if (low > high) std::swap(low, high);
        match = match || (c >= low && c <= high);
        q += 3;
      } else {
        match = match || pattern[q] == c;
        ++q;
      }
    }
    return negated ? !match : match;
  };
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = ++p;
      star_text = t;
    } else if (p < pattern.size() && matches(p, text[t])) {
      p = element_end(p);
      ++t;
    } else if (star != std::string_view::npos) {
      p = star;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// -- execution --

namespace detail {

template <class Value>
inline constexpr bool expires = requires(Value& value) {
  value.expires_at;
};

inline const std::string wrong_type = reply::error("WRONGTYPE Operation against a key holding the wrong kind of value");
inline const std::string not_integer = reply::error("ERR value is not an integer or out of range");
inline const std::string syntax_error = reply::error("ERR syntax error");

/// `name` equals `upper` (an upper-case literal), ignoring case.
inline bool is(std::string_view name, std::string_view upper) {
  if (name.size() != upper.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i] >= 'a' && name[i] <= 'z' ? static_cast<char>(name[i] - 'a' + 'A') : name[i];
    if (c != upper[i]) return false;
  }
  return true;
}

inline std::string arity_error(std::string_view fullname) {
  return reply::error(fmt::format("ERR wrong number of arguments for '{}' command", fullname));
}

template <class Value>
std::uint64_t list_size(const Value& value) {
  return value.items.size() - value.head;
}

template <class Value>
void push_front(Value& value, std::string element) {
  if (value.head == 0) {
    const std::size_t size = value.items.size();
    const std::size_t room = std::max<std::size_t>(8, size);
    std::vector<std::string> grown(room + size);
    std::move(value.items.begin(), value.items.end(), grown.begin() + static_cast<std::ptrdiff_t>(room));
    value.items = std::move(grown);
    value.head = room;
  }
  value.items[--value.head] = std::move(element);
}

/// Drops what LPOPs left at the front once it outweighs the list.
template <class Value>
void compact(Value& value) {
  if (value.head > 64 && value.head > 2 * list_size(value)) {
    value.items.erase(value.items.begin(), value.items.begin() + static_cast<std::ptrdiff_t>(value.head));
    value.head = 0;
  }
}

template <class Map>
class shard_db {
 public:
  using value_type = typename Map::mapped_type;
  static constexpr bool with_expiry = expires<value_type>;

  shard_db(Map& map, std::int64_t now) : map_(map), now_(now) {}

  /// The key's value, unless absent or (kv 2) expired: an expired key is deleted when touched.
  value_type* find(const std::string& key) {
    const auto found = map_.find(key);
    if (found == map_.end()) return nullptr;
    if constexpr (with_expiry) {
      if (expired(found->second)) {
        map_.erase(found);
        return nullptr;
      }
    }
    return &found->second;
  }
  bool expired(const value_type& value) const {
    if constexpr (with_expiry)
      return value.expires_at != 0 && now_ > value.expires_at;
    else
      return false;
  }
  value_type& put(const std::string& key) { return map_[key]; }
  void erase(const std::string& key) { map_.erase(key); }
  Map& map() { return map_; }
  std::int64_t now() const { return now_; }

 private:
  Map& map_;
  std::int64_t now_;
};

template <class Db>
std::string set_string(Db& db, const std::string& key, std::string text, bool keep_ttl, std::int64_t expires_at) {
  auto& value = db.put(key);
  value.type = kind::string;
  value.text = std::move(text);
  value.items.clear();
  value.items.shrink_to_fit();
  value.head = 0;
  if constexpr (Db::with_expiry) {
    if (!keep_ttl) value.expires_at = expires_at;
  }
  return reply::ok;
}

template <class Db>
std::string get(Db& db, const std::string& key) {
  const auto* value = db.find(key);
  if (value == nullptr) return reply::null_bulk();
  if (value->type != kind::string) return wrong_type;
  return reply::bulk(value->text);
}

template <class Db>
std::string set(Db& db, const std::vector<std::string>& argv) {
  enum : unsigned { nx = 1, xx = 2, get_old = 4, keep_ttl = 8, ex = 16, px = 32, exat = 64, pxat = 128 };
  unsigned flags = 0;
  const std::string* expire = nullptr;
  constexpr unsigned timed = ex | px | exat | pxat;
  for (std::size_t j = 3; j < argv.size(); ++j) {
    const auto& option = argv[j];
    const bool has_next = j + 1 < argv.size();
    if (is(option, "NX") && !(flags & xx)) {
      flags |= nx;
    } else if (is(option, "XX") && !(flags & nx)) {
      flags |= xx;
    } else if (is(option, "GET")) {
      flags |= get_old;
    } else if (Db::with_expiry && is(option, "KEEPTTL") && !(flags & timed)) {
      flags |= keep_ttl;
    } else if (Db::with_expiry && has_next && !(flags & (keep_ttl | timed)) &&
               (is(option, "EX") || is(option, "PX") || is(option, "EXAT") || is(option, "PXAT"))) {
      flags |= is(option, "EX") ? ex : is(option, "PX") ? px : is(option, "EXAT") ? exat : pxat;
      expire = &argv[++j];
    } else {
      return syntax_error;
    }
  }
  std::int64_t expires_at = 0;
  if (expire != nullptr) {
    const auto given = parse_integer(*expire);
    if (!given) return not_integer;
    const auto invalid = reply::error("ERR invalid expire time in 'set' command");
    std::int64_t ms = *given;
    const bool seconds = (flags & (ex | exat)) != 0;
    if (ms <= 0 || (seconds && ms > std::numeric_limits<std::int64_t>::max() / 1000)) return invalid;
    if (seconds) ms *= 1000;
    if (flags & (ex | px)) {
      if (ms > std::numeric_limits<std::int64_t>::max() - db.now()) return invalid;
      ms += db.now();
    }
    expires_at = ms;
  }
  const auto& key = argv[1];
  std::string old;
  const auto* found = db.find(key);
  if (flags & get_old) {
    if (found != nullptr && found->type != kind::string) return wrong_type;
    old = found != nullptr ? reply::bulk(found->text) : reply::null_bulk();
  }
  if (((flags & nx) && found != nullptr) || ((flags & xx) && found == nullptr))
    return (flags & get_old) ? old : reply::null_bulk();
  set_string(db, key, argv[2], (flags & keep_ttl) != 0, expires_at);
  return (flags & get_old) ? old : reply::ok;
}

template <class Db>
std::string increment(Db& db, const std::string& key, std::int64_t by) {
  auto* value = db.find(key);
  std::int64_t current = 0;
  if (value != nullptr) {
    if (value->type != kind::string) return wrong_type;
    const auto parsed = parse_integer(value->text);
    if (!parsed) return not_integer;
    current = *parsed;
  }
  if ((by < 0 && current < 0 && by < std::numeric_limits<std::int64_t>::min() - current) ||
      (by > 0 && current > 0 && by > std::numeric_limits<std::int64_t>::max() - current))
    return reply::error("ERR increment or decrement would overflow");
  current += by;
  if (value == nullptr) {
    set_string(db, key, fmt::format("{}", current), false, 0);
  } else {
    value->text = fmt::format("{}", current);  // its expiry stays, as in Redis
  }
  return reply::integer(current);
}

template <class Db>
std::string push(Db& db, const std::vector<std::string>& argv, bool front) {
  auto* value = db.find(argv[1]);
  if (value != nullptr && value->type != kind::list) return wrong_type;
  if (value == nullptr) {
    value = &db.put(argv[1]);
    value->type = kind::list;
  }
  for (std::size_t j = 2; j < argv.size(); ++j) {
    if (front)
      push_front(*value, argv[j]);
    else
      value->items.push_back(argv[j]);
  }
  return reply::integer(static_cast<std::int64_t>(list_size(*value)));
}

template <class Db>
std::string pop(Db& db, const std::vector<std::string>& argv, bool front) {
  if (argv.size() > 3) return arity_error(front ? "lpop" : "rpop");
  const bool has_count = argv.size() == 3;
  std::int64_t count = 0;
  if (has_count) {
    // Redis gives its range message for a count that is no integer too.
    const auto parsed = parse_integer(argv[2]);
    if (!parsed || *parsed < 0) return reply::error("ERR value is out of range, must be positive");
    count = *parsed;
  }
  auto* value = db.find(argv[1]);
  if (value == nullptr) return has_count ? reply::null_array() : reply::null_bulk();
  if (value->type != kind::list) return wrong_type;
  if (has_count && count == 0) return reply::array_header(0);
  const auto take_one = [&]() {
    std::string element;
    if (front) {
      element = std::move(value->items[value->head++]);
    } else {
      element = std::move(value->items.back());
      value->items.pop_back();
    }
    return element;
  };
  std::string out;
  if (!has_count) {
    out = reply::bulk(take_one());
  } else {
    const auto n = std::min<std::uint64_t>(static_cast<std::uint64_t>(count), list_size(*value));
    out = reply::array_header(n);
    for (std::uint64_t i = 0; i < n; ++i) out += reply::bulk(take_one());
  }
  if (list_size(*value) == 0)
    db.erase(argv[1]);
  else
    compact(*value);
  return out;
}

template <class Db>
std::string range(Db& db, const std::vector<std::string>& argv) {
  const auto start_given = parse_integer(argv[2]);
  const auto end_given = parse_integer(argv[3]);
  if (!start_given || !end_given) return not_integer;
  const auto* value = db.find(argv[1]);
  if (value == nullptr) return reply::array_header(0);
  if (value->type != kind::list) return wrong_type;
  const auto length = static_cast<std::int64_t>(list_size(*value));
  std::int64_t start = *start_given, end = *end_given;
  if (start < 0) start = length + start;
  if (end < 0) end = length + end;
  if (start < 0) start = 0;
  if (start > end || start >= length) return reply::array_header(0);
  if (end >= length) end = length - 1;
  std::string out = reply::array_header(static_cast<std::size_t>(end - start + 1));
  for (auto i = start; i <= end; ++i) out += reply::bulk(value->items[value->head + static_cast<std::uint64_t>(i)]);
  return out;
}

template <class Db>
std::string expire(Db& db, const std::vector<std::string>& argv) {
  bool nx = false, xx = false, gt = false, lt = false;
  for (std::size_t j = 3; j < argv.size(); ++j) {
    if (is(argv[j], "NX"))
      nx = true;
    else if (is(argv[j], "XX"))
      xx = true;
    else if (is(argv[j], "GT"))
      gt = true;
    else if (is(argv[j], "LT"))
      lt = true;
    else
      return reply::error(fmt::format("ERR Unsupported option {}", argv[j]));
  }
  if (nx && (xx || gt || lt))
    return reply::error("ERR NX and XX, GT or LT options at the same time are not compatible");
  if (gt && lt) return reply::error("ERR GT and LT options at the same time are not compatible");
  const auto given = parse_integer(argv[2]);
  if (!given) return not_integer;
  const auto invalid = reply::error("ERR invalid expire time in 'expire' command");
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  constexpr auto min = std::numeric_limits<std::int64_t>::min();
  if (*given > max / 1000 || *given < min / 1000) return invalid;
  std::int64_t when = *given * 1000;
  if (when > max - db.now()) return invalid;
  when += db.now();
  auto* value = db.find(argv[1]);
  if (value == nullptr) return reply::integer(0);
  const std::int64_t current = value->expires_at == 0 ? -1 : value->expires_at;
  if ((nx && current != -1) || (xx && current == -1) || (gt && (when <= current || current == -1)) ||
      (lt && current != -1 && when >= current))
    return reply::integer(0);
  if (when <= db.now()) {
    db.erase(argv[1]);
  } else {
    value->expires_at = when;
  }
  return reply::integer(1);
}

template <class Db>
std::string ttl(Db& db, const std::string& key) {
  const auto* value = db.find(key);
  if (value == nullptr) return reply::integer(-2);
  if (value->expires_at == 0) return reply::integer(-1);
  const std::int64_t left = std::max<std::int64_t>(0, value->expires_at - db.now());
  return reply::integer((left + 500) / 1000);
}

}  // namespace detail

/// The keys of `db` that match `pattern` (expired keys left out, as Redis's KEYS does).
template <class Store>
std::vector<std::string> keys(Store& store, std::size_t db, std::string_view pattern, std::int64_t now_ms) {
  std::vector<std::string> found;
  detail::shard_db shard(store.dbs.at(db), now_ms);
  const bool all = pattern == "*";
  for (const auto& [key, value] : shard.map())
    if ((all || glob_match(pattern, key)) && !shard.expired(value)) found.push_back(key);
  return found;
}

/// The keys `db` holds; like Redis's DBSIZE, this counts an expired key until it is touched.
template <class Store>
std::size_t count(const Store& store, std::size_t db) {
  return store.dbs.at(db).size();
}

/// Active expiry, as Redis's cycle does it between requests: visits up to `budget` hash buckets
/// from `cursor` (0 to start) across the databases, deletes the keys found expired, and returns
/// the cursor to pass next (0 once every bucket was visited). The caller keeps the cursor, as a
/// SCAN client does; a rehash in between may make a sweep skip or revisit keys, never fail. A kv 1
/// store has nothing to expire.
template <class Store>
std::uint64_t sweep(Store& store, std::uint64_t cursor, std::int64_t now_ms, std::size_t budget) {
  using Value = typename std::remove_reference_t<decltype(store.dbs[0])>::mapped_type;
  if constexpr (!detail::expires<Value>) {
    return 0;
  } else {
    // The cursor: the database in its top byte, the bucket below.
    std::size_t db = static_cast<std::size_t>(cursor >> 56);
    std::size_t bucket = static_cast<std::size_t>(cursor & ((std::uint64_t{1} << 56) - 1));
    std::vector<std::string> expired;
    for (; db < store.dbs.size() && budget > 0; ++db, bucket = 0) {
      auto& map = store.dbs[db];
      for (; bucket < map.bucket_count() && budget > 0; ++bucket, --budget) {
        for (auto entry = map.begin(bucket); entry != map.end(bucket); ++entry)
          if (entry->second.expires_at != 0 && now_ms > entry->second.expires_at) expired.push_back(entry->first);
      }
      for (const auto& key : expired) map.erase(key);
      expired.clear();
      if (bucket < map.bucket_count()) return (std::uint64_t{db} << 56) | bucket;
    }
    return db < store.dbs.size() ? std::uint64_t{db} << 56 : 0;
  }
}

/// Empties one database, or all of them.
template <class Store>
void flush(Store& store, std::optional<std::size_t> db = std::nullopt) {
  if (db) {
    store.dbs.at(*db) = {};
    return;
  }
  for (auto& map : store.dbs) map = {};
}

/// Runs a shard-side command on database `db` of the shard's store at `now_ms` (ms since the
/// epoch) and returns its RESP reply. The shard-side commands are the single-key commands GET,
/// SET, GETSET, DEL, EXISTS, INCR, DECR, INCRBY, LPUSH, RPUSH, LPOP, RPOP, LRANGE and, with kv 2's
/// store, EXPIRE, TTL, PERSIST; and each shard's part of the commands the connection spreads:
/// MGET of one key (nil for a list, not WRONGTYPE), KEYS, DBSIZE, FLUSHALL, FLUSHDB. The
/// connection checked the arity; what arrives here is checked again, never trusted.
template <class Store>
std::string execute(Store& store, std::size_t db, const std::vector<std::string>& argv, std::int64_t now_ms) {
  using detail::is;
  if (argv.empty()) return reply::error("ERR empty command");
  if (db >= store.dbs.size()) return reply::error("ERR DB index is out of range");
  detail::shard_db shard(store.dbs[db], now_ms);
  constexpr bool v2 = decltype(shard)::with_expiry;
  const auto& name = argv[0];
  const auto argc = argv.size();
  const auto exactly = [&](std::size_t n) { return argc == n; };
  if (is(name, "GET") && exactly(2)) return detail::get(shard, argv[1]);
  if (is(name, "SET") && argc >= 3) return detail::set(shard, argv);
  if (is(name, "MGET") && exactly(2)) {
    const auto* value = shard.find(argv[1]);
    return value == nullptr || value->type != kind::string ? reply::null_bulk() : reply::bulk(value->text);
  }
  if (is(name, "GETSET") && exactly(3)) {
    auto old = detail::get(shard, argv[1]);
    if (old[0] != '-') detail::set_string(shard, argv[1], argv[2], false, 0);
    return old;
  }
  if (is(name, "DEL") && exactly(2)) {
    const bool found = shard.find(argv[1]) != nullptr;
    if (found) shard.erase(argv[1]);
    return reply::integer(found ? 1 : 0);
  }
  if (is(name, "EXISTS") && exactly(2)) return reply::integer(shard.find(argv[1]) != nullptr ? 1 : 0);
  if (is(name, "INCR") && exactly(2)) return detail::increment(shard, argv[1], 1);
  if (is(name, "DECR") && exactly(2)) return detail::increment(shard, argv[1], -1);
  if (is(name, "INCRBY") && exactly(3)) {
    const auto by = parse_integer(argv[2]);
    return by ? detail::increment(shard, argv[1], *by) : detail::not_integer;
  }
  if (is(name, "LPUSH") && argc >= 3) return detail::push(shard, argv, true);
  if (is(name, "RPUSH") && argc >= 3) return detail::push(shard, argv, false);
  if (is(name, "LPOP") && argc >= 2) return detail::pop(shard, argv, true);
  if (is(name, "RPOP") && argc >= 2) return detail::pop(shard, argv, false);
  if (is(name, "LRANGE") && exactly(4)) return detail::range(shard, argv);
  if constexpr (v2) {
    if (is(name, "EXPIRE") && argc >= 3) return detail::expire(shard, argv);
    if (is(name, "TTL") && exactly(2)) return detail::ttl(shard, argv[1]);
    if (is(name, "PERSIST") && exactly(2)) {
      auto* value = shard.find(argv[1]);
      if (value == nullptr || value->expires_at == 0) return reply::integer(0);
      value->expires_at = 0;
      return reply::integer(1);
    }
  }
  if (is(name, "KEYS") && exactly(2)) return reply::bulk_array(keys(store, db, argv[1], now_ms));
  if (is(name, "DBSIZE") && exactly(1)) return reply::integer(static_cast<std::int64_t>(count(store, db)));
  if (is(name, "FLUSHALL") && exactly(1)) return flush(store), reply::ok;
  if (is(name, "FLUSHDB") && exactly(1)) return flush(store, db), reply::ok;
  return reply::error(fmt::format("ERR shard cannot run '{}' with {} arguments", name.substr(0, 128), argc - 1));
}

}  // namespace kv
