// RESP2, the Redis protocol: an incremental request parser, bounded as redis-server 7.0 is, and
// the reply encoders. Pure logic: the bytes come from whoever reads the socket, in any fragments.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace kv {

/// Redis's string2ll: an optional '-', then digits with no leading zero (or "0" alone), nothing
/// else, in range. Redis reads every integer argument and stored value this way.
inline std::optional<std::int64_t> parse_integer(std::string_view text) {
  if (text.empty() || text.size() >= 21) return std::nullopt;
  if (text == "0") return 0;
  std::size_t at = 0;
  const bool negative = text[0] == '-';
  if (negative && ++at == text.size()) return std::nullopt;
  if (text[at] < '1' || text[at] > '9') return std::nullopt;
  std::uint64_t value = 0;
  for (; at < text.size(); ++at) {
    const char c = text[at];
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (value > max + 1) return std::nullopt;
    return value == max + 1 ? std::numeric_limits<std::int64_t>::min() : -static_cast<std::int64_t>(value);
  }
  if (value > max) return std::nullopt;
  return static_cast<std::int64_t>(value);
}

// -- replies --

namespace reply {
inline std::string simple(std::string_view text) {
  return fmt::format("+{}\r\n", text);
}
/// An error reply; `text` starts with its code ("ERR ...", "WRONGTYPE ..."). A CR or LF in it
/// would break the framing, so it becomes a space, as Redis does.
inline std::string error(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 3);
  out += '-';
  for (const char c : text) out += (c == '\r' || c == '\n') ? ' ' : c;
  out += "\r\n";
  return out;
}
inline std::string integer(std::int64_t value) {
  return fmt::format(":{}\r\n", value);
}
inline std::string bulk(std::string_view data) {
  std::string out = fmt::format("${}\r\n", data.size());
  out.reserve(out.size() + data.size() + 2);
  out.append(data);
  out += "\r\n";
  return out;
}
inline std::string null_bulk() {
  return "$-1\r\n";
}
/// An array's header: its `count` elements, already encoded, follow it.
inline std::string array_header(std::size_t count) {
  return fmt::format("*{}\r\n", count);
}
inline std::string null_array() {
  return "*-1\r\n";
}
/// An array of encoded elements.
inline std::string array(const std::vector<std::string>& elements) {
  std::string out = array_header(elements.size());
  for (const auto& element : elements) out += element;
  return out;
}
/// An array of bulk strings.
template <class Range>
std::string bulk_array(const Range& items) {
  std::string out = array_header(static_cast<std::size_t>(std::distance(std::begin(items), std::end(items))));
  for (const auto& item : items) out += bulk(item);
  return out;
}
inline const std::string ok = "+OK\r\n";
}  // namespace reply

// -- requests --

/// Splits an inline command line as Redis's sdssplitargs: blanks separate arguments; "double
/// quotes" take \n \r \t \b \a \xHH and \<any> escapes, 'single quotes' take \'; a closing quote
/// must be followed by a blank or the end. Empty when the quotes do not balance.
inline std::optional<std::vector<std::string>> split_inline(std::string_view line) {
  std::vector<std::string> args;
  const auto blank = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'; };
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  // A NUL ends the line for sdssplitargs, which reads a C string.
  line = line.substr(0, line.find('\0'));
  std::size_t at = 0;
  const auto peek = [&](std::size_t offset) { return at + offset < line.size() ? line[at + offset] : '\0'; };
  for (;;) {
    while (at < line.size() && blank(line[at])) ++at;
    if (at == line.size()) return args;
    std::string current;
    bool in_double = false, in_single = false;
    for (bool done = false; !done;) {
      const char c = peek(0);
      if (in_double) {
        if (c == '\\' && peek(1) == 'x' && hex(peek(2)) >= 0 && hex(peek(3)) >= 0) {
          current += static_cast<char>(hex(peek(2)) * 16 + hex(peek(3)));
          at += 3;
        } else if (c == '\\' && peek(1) != '\0') {
          ++at;
          switch (line[at]) {
            case 'n':
              current += '\n';
              break;
            case 'r':
              current += '\r';
              break;
            case 't':
              current += '\t';
              break;
            case 'b':
              current += '\b';
              break;
            case 'a':
              current += '\a';
              break;
            default:
              current += line[at];
              break;
          }
        } else if (c == '"') {
          if (peek(1) != '\0' && !blank(peek(1))) return std::nullopt;
          done = true;
        } else if (c == '\0') {
          return std::nullopt;
        } else {
          current += c;
        }
      } else if (in_single) {
        if (c == '\\' && peek(1) == '\'') {
          ++at;
          current += '\'';
        } else if (c == '\'') {
          if (peek(1) != '\0' && !blank(peek(1))) return std::nullopt;
          done = true;
        } else if (c == '\0') {
          return std::nullopt;
        } else {
          current += c;
        }
      } else {
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"':
            in_double = true;
            break;
          case '\'':
            in_single = true;
            break;
          default:
            current += c;
            break;
        }
      }
      if (at < line.size()) ++at;
    }
    args.push_back(std::move(current));
  }
}

/// What a request_parser has found.
enum class parse_status : std::uint8_t {
  command,    ///< a whole command: taken by take()
  need_more,  ///< everything buffered is consumed; feed more bytes
  error,      ///< a protocol error: send error_reply(), then close the connection (as Redis does)
};

/// The incremental RESP2 request parser. Bytes are fed in any fragments; next() finds one
/// command at a time: a multibulk `*N\r\n$len\r\narg\r\n...` or an inline line `PING\r\n`, as
/// redis-server reads them (the first byte of a request decides which). Every length is bounded
/// before anything is kept for it, and a bulk argument grows as its bytes arrive, never by its
/// declared length. A plain aggregate, so that a connection's parser can be part of its state
/// across an upgrade.
struct request_parser {
  // Bounds: redis-server's proto-max-bulk-len (512 MB) and PROTO_INLINE_MAX_SIZE (64 KB). Redis
  // 7.0 takes a multibulk count up to INT_MAX (growing its argv as arguments arrive); this parser
  // refuses one above 1024 * 1024, as Redis did before 7.0.
  std::uint64_t max_bulk_length = 512ull * 1024 * 1024;
  std::uint64_t max_multibulk_length = 1024 * 1024;
  std::uint64_t max_inline_length = 64 * 1024;
  /// The bytes of one command's arguments: past it the connection is closed without a reply, as
  /// redis-server closes a client past its client-query-buffer-limit (1 GB). Redis counts only
  /// its unparsed buffer, so a command of many large arguments is bounded here and not there.
  std::uint64_t max_command_bytes = 1024ull * 1024 * 1024;

  enum phase : std::uint8_t { start, bulk_header, bulk_data, failed };

  /// Bytes fed and not yet parsed, from `position`.
  std::string buffer;
  std::uint64_t position = 0;
  /// Where the search for a line's end resumes: the bytes before it hold none, so a line fed a
  /// byte at a time is scanned once, not once per byte.
  std::uint64_t scanned = 0;
  std::uint8_t state = start;
  std::uint64_t arguments_left = 0;  ///< of the multibulk in progress
  std::uint64_t bulk_left = 0;       ///< of the bulk in progress, its trailing CRLF included
  std::vector<std::string> argv;     ///< the command being read, then the one found
  std::uint64_t command_bytes = 0;   ///< of the command being read
  std::string error_text;            ///< once failed: the error, "ERR Protocol error: ..." (empty: none)

  /// Appends bytes. After an error they are ignored: the connection is closing.
  void feed(std::string_view bytes) {
    if (state == failed) return;
    if (position == buffer.size()) {
      buffer.clear();
      position = scanned = 0;
    } else if (position > 4096 && position * 2 > buffer.size()) {
      buffer.erase(0, position);
      scanned = scanned > position ? scanned - position : 0;
      position = 0;
    }
    buffer.append(bytes);
  }

  /// Finds the next command. On `command` the command is take()n before next() is asked again.
  parse_status next() {
    for (;;) {
      switch (state) {
        case failed:
          return parse_status::error;
        case start: {
          if (position == buffer.size()) return parse_status::need_more;
          if (buffer[position] != '*') {
            const auto found = parse_inline();
            if (found != parse_status::command || !argv.empty()) return found;
            continue;  // an empty line is no command
          }
          const auto line = header_line("too big mbulk count string");
          if (!line) return state == failed ? parse_status::error : parse_status::need_more;
          const auto count = parse_integer(line->substr(1));
          if (!count || *count > static_cast<std::int64_t>(max_multibulk_length))
            return fail("Protocol error: invalid multibulk length");
          if (*count <= 0) continue;  // `*0`, `*-1`: no command, as in Redis
          arguments_left = static_cast<std::uint64_t>(*count);
          command_bytes = 0;
          argv.clear();
          argv.reserve(std::min<std::uint64_t>(arguments_left, 1024));  // grown as they arrive
          state = bulk_header;
          continue;
        }
        case bulk_header: {
          const auto line = header_line("too big bulk count string");
          if (!line) return state == failed ? parse_status::error : parse_status::need_more;
          if ((*line)[0] != '$') return fail(fmt::format("Protocol error: expected '$', got '{}'", (*line)[0]));
          const auto length = parse_integer(line->substr(1));
          if (!length || *length < 0 || static_cast<std::uint64_t>(*length) > max_bulk_length)
            return fail("Protocol error: invalid bulk length");
          bulk_left = static_cast<std::uint64_t>(*length) + 2;
          argv.emplace_back();
          state = bulk_data;
          continue;
        }
        case bulk_data: {
          const std::uint64_t available = buffer.size() - position;
          const std::uint64_t taken = std::min(available, bulk_left);
          // The data, without its two trailing bytes (which Redis skips unread, CRLF or not).
          const std::uint64_t data = bulk_left > 2 ? std::min(taken, bulk_left - 2) : 0;
          command_bytes += data;
          if (command_bytes > max_command_bytes) return fail({});
          argv.back().append(buffer, position, data);
          position += taken;
          bulk_left -= taken;
          if (bulk_left > 0) return parse_status::need_more;
          state = --arguments_left == 0 ? start : bulk_header;
          if (state == start) return parse_status::command;
          continue;
        }
        default:
          return fail("Protocol error: parser state");
      }
    }
  }

  /// The command next() found.
  std::vector<std::string> take() { return std::exchange(argv, {}); }

  bool closed() const { return state == failed; }
  /// The reply to send before closing, once next() said `error`.
  /// (Empty when the connection is to close without one: a command past max_command_bytes.)
  std::string error_reply() const { return error_text.empty() ? std::string() : reply::error(error_text); }
  /// Bytes held: the buffer and the command being read.
  std::size_t held() const {
    std::size_t total = buffer.capacity();
    for (const auto& arg : argv) total += arg.capacity();
    return total;
  }

 private:
  parse_status fail(std::string text) {
    error_text = text.empty() ? std::string() : "ERR " + std::move(text);
    state = failed;
    buffer.clear();
    buffer.shrink_to_fit();
    position = 0;
    argv.clear();
    return parse_status::error;
  }

  /// A `*N` or `$N` line: up to its CR, the byte after the CR skipped unread as Redis does. None
  /// while it has not all arrived (or when it is too long: then the parser has failed).
  std::optional<std::string_view> header_line(std::string_view too_big) {
    const auto cr = buffer.find('\r', std::max(position, scanned));
    if (cr == std::string::npos) {
      scanned = buffer.size();
      if (buffer.size() - position > max_inline_length) fail(fmt::format("Protocol error: {}", too_big));
      return std::nullopt;
    }
    // However the line arrives (Redis bounds it only while its CR has not come).
    if (cr - position > max_inline_length) {
      fail(fmt::format("Protocol error: {}", too_big));
      return std::nullopt;
    }
    if (cr + 1 >= buffer.size()) {  // its LF has not arrived
      scanned = cr;
      return std::nullopt;
    }
    const std::string_view line(buffer.data() + position, cr - position);
    position = cr + 2;
    return line;
  }

  parse_status parse_inline() {
    const auto newline = buffer.find('\n', std::max(position, scanned));
    if (newline == std::string::npos) scanned = buffer.size();
    // Redis checks the bound only while no newline has arrived, so whether a long line passes
    // depends on how it was read; here a line is bounded however it arrives.
    const std::uint64_t length = (newline == std::string::npos ? buffer.size() : newline) - position;
    if (length > max_inline_length) return fail("Protocol error: too big inline request");
    if (newline == std::string::npos) return parse_status::need_more;
    std::string_view line(buffer.data() + position, newline - position);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto args = split_inline(line);
    if (!args) return fail("Protocol error: unbalanced quotes in request");
    position = newline + 1;
    argv = std::move(*args);
    return parse_status::command;
  }
};

}  // namespace kv
