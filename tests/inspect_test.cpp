// Inspect: values printed exactly as Elixir's inspect prints them.
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "anemone/account.hpp"
#include "anemone/servers.hpp"

using namespace anemone;

TEST_CASE("accounts print as the article prints them") {
  CHECK(fmt::format("{}", v2::Account{}) == "%Account{name: nil, score: 0, stage: 0}");
  CHECK(fmt::format("[3] {}", v3::Account{}) == "[3] %Account{name: nil, score: 0, stage: 0, active: true}");
  CHECK(fmt::format("{}", v3::Account{"Alice", 3, 1, true}) ==
        "%Account{name: \"Alice\", score: 3, stage: 1, active: true}");
  CHECK(hotswap::inspect(v1::Account{"Bob", -6}) == "%Account{name: \"Bob\", score: -6}");
}

// What `hotswapctl status`, `state` and `tree` show of a server's state, and get_state's refusal
// says: the type as hotswap describes it, the same on g++ and clang, not libstdc++'s spelling.
TEST_CASE("a server's state type is named as hotswap describes it") {
  CHECK(hotswap::table_of<AccountManagerV3>.state_type == "map<string,Account@3>");
  CHECK(hotswap::table_of<AccountManagerV2>.state_type == "map<string,Account@2>");
  CHECK(hotswap::table_of<InspectorV2>.state_type == "anemone::InspectorState");  // no description: as written
  CHECK(hotswap::detail::readable_name<std::vector<std::optional<v1::Account>>> == "vector<optional<Account@1>>");
  CHECK(hotswap::detail::readable_name<std::pair<std::string, std::vector<std::string>>> ==
        "std::pair<std::string, std::vector<std::string>>");
}

TEST_CASE("strings are quoted and escaped") {
  CHECK(hotswap::inspect(std::string("say \"hi\"\\\n")) == R"("say \"hi\"\\\n")");
  CHECK(hotswap::inspect(std::optional<std::string>{}) == "nil");
  CHECK(hotswap::inspect(std::optional<std::string>{""}) == "\"\"");
}

// Elixir's rules (Inspect for BitString, Code.Identifier.escape): a string String.printable?
// holds for prints quoted, its control characters as escapes; any other binary (a control byte
// outside \a..\r and \e, a C1 character, bytes that are not UTF-8) prints as its bytes. Either
// way no control byte reaches the terminal of the operator who asked for a state.
TEST_CASE("control characters are escaped as Elixir escapes them, never printed raw") {
  CHECK(hotswap::inspect(std::string("\x1b[2J\a\b\t\n\v\f\r\x7f")) == R"("\e[2J\a\b\t\n\v\f\r\d")");
  CHECK(hotswap::inspect(std::string("\x1b]0;title\a")) == R"("\e]0;title\a")");
  CHECK(hotswap::inspect(std::string("#{x} # {")) == R"("\#{x} # {")");
  CHECK(hotswap::inspect(std::string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82")) ==
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82\"");
  CHECK(hotswap::inspect(std::string("\xef\xbb\xbfhi")) == R"("\uFEFFhi")");
  CHECK(hotswap::inspect(std::string("a\0b", 3)) == "<<97, 0, 98>>");
  CHECK(hotswap::inspect(std::string("\x01")) == "<<1>>");
  CHECK(hotswap::inspect(std::string("\x1f")) == "<<31>>");
  CHECK(hotswap::inspect(std::string("x\xc2\x9b") + "2J") == "<<120, 194, 155, 50, 74>>");  // C1 CSI
  CHECK(hotswap::inspect(std::string("\xff\x9b")) == "<<255, 155>>");                       // not UTF-8
  CHECK(hotswap::inspect(std::string("\xc0\xaf")) == "<<192, 175>>");                       // overlong '/'
  CHECK(hotswap::inspect(std::string("\xed\xa0\x80")) == "<<237, 160, 128>>");              // a surrogate
  CHECK(hotswap::inspect(std::string("\xef\xbf\xbe")) == "<<239, 191, 190>>");              // U+FFFE
  CHECK(hotswap::inspect(std::vector<std::string>{"ok", "\x1b", "\x05"}) == R"(["ok", "\e", <<5>>])");
  for (int byte = 0; byte < 256; ++byte) {
    const std::string printed = hotswap::inspect(std::string(1, static_cast<char>(byte)) + "x");
    for (char c : printed) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
  }
}

TEST_CASE("numbers print as Elixir prints them") {
  CHECK(hotswap::inspect(1.0) == "1.0");
  CHECK(hotswap::inspect(0.1) == "0.1");
  CHECK(hotswap::inspect(-2.5f) == "-2.5");
  CHECK(hotswap::inspect(1e20) == "1.0e20");
  CHECK(hotswap::inspect(1.5e-7) == "1.5e-7");
  CHECK(hotswap::inspect(42L) == "42");
  CHECK(hotswap::inspect('a') == "97");
  CHECK(hotswap::inspect(false) == "false");
}

TEST_CASE("containers and nested schemas print recursively") {
  CHECK(hotswap::inspect(std::vector<int>{1, 2, 3}) == "[1, 2, 3]");
  CHECK(hotswap::inspect(std::vector<int>{}) == "[]");
  const std::map<std::string, v1::Account> accounts{{"bob", {"Bob", 6}}, {"alice", {"Alice", 3}}};
  CHECK(hotswap::inspect(accounts) ==
        R"(%{"alice" => %Account{name: "Alice", score: 3}, "bob" => %Account{name: "Bob", score: 6}})");
  // A hash map prints in key order too, as Elixir prints small maps.
  const std::unordered_map<int, std::vector<std::optional<int>>> sparse{{3, {1, {}}}, {1, {}}, {2, {{7}}}};
  CHECK(hotswap::inspect(sparse) == "%{1 => [], 2 => [7], 3 => [1, nil]}");
}

// -- state sizes: what an upgrade's report says a state holds --

#include <hotswap/detail/schemas/state_size.hpp>

TEST_CASE("a state's size is itself and what its containers hold on the heap") {
  using hotswap::detail::heap_bytes;
  CHECK(heap_bytes(42) == 0);
  CHECK(heap_bytes(std::string("short")) == 0);  // held inline
  const std::string long_text(100, 'x');
  CHECK(heap_bytes(long_text) == long_text.capacity() + 1);
  std::vector<int> numbers{1, 2, 3};
  numbers.reserve(100);
  CHECK(heap_bytes(numbers) == 100 * sizeof(int));
  const std::vector<std::string> texts{long_text, "short"};
  CHECK(heap_bytes(texts) == 2 * sizeof(std::string) + long_text.capacity() + 1);
  CHECK(heap_bytes(std::optional<std::string>{}) == 0);
  CHECK(heap_bytes(std::optional<std::string>{long_text}) == long_text.capacity() + 1);
  // A map's nodes: the value, three pointers and the colour.
  const std::map<std::string, v1::Account> accounts{{"bob", {"Bob", 6}}, {long_text, {long_text, 3}}};
  const std::size_t node = sizeof(std::pair<const std::string, v1::Account>) + 4 * sizeof(void*);
  CHECK(heap_bytes(accounts) == 2 * node + 2 * (long_text.capacity() + 1));
  // A hash map's: the value, a link and a cached hash; and its buckets.
  const std::unordered_map<int, std::vector<int>> sparse{{1, {1, 2}}, {2, {}}};
  CHECK(heap_bytes(sparse) == 2 * (sizeof(std::pair<const int, std::vector<int>>) + 2 * sizeof(void*)) +
                                  sparse.bucket_count() * sizeof(void*) + 2 * sizeof(int));
  const v1::Account alice{long_text, 1};
  CHECK(hotswap::detail::state_bytes<v1::Account>(&alice) == sizeof(v1::Account) + long_text.capacity() + 1);
}
