// Inspect: values printed exactly as Elixir's inspect prints them.
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "anemone/account.hpp"

using namespace anemone;

TEST_CASE("accounts print as the article prints them") {
  CHECK(fmt::format("{}", v2::Account{}) == "%Account{name: nil, score: 0, stage: 0}");
  CHECK(fmt::format("[3] {}", v3::Account{}) == "[3] %Account{name: nil, score: 0, stage: 0, active: true}");
  CHECK(fmt::format("{}", v3::Account{"Alice", 3, 1, true}) ==
        "%Account{name: \"Alice\", score: 3, stage: 1, active: true}");
  CHECK(hotswap::inspect(v1::Account{"Bob", -6}) == "%Account{name: \"Bob\", score: -6}");
}

TEST_CASE("strings are quoted and escaped") {
  CHECK(hotswap::inspect(std::string("say \"hi\"\\\n")) == R"("say \"hi\"\\\n")");
  CHECK(hotswap::inspect(std::optional<std::string>{}) == "nil");
  CHECK(hotswap::inspect(std::optional<std::string>{""}) == "\"\"");
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
