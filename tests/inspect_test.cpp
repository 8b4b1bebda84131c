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
