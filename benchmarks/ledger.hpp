// A server holding many Anemone accounts in a vector, v2 and v3 (each account gains `active`):
// what servers_benchmark and the comparison upgrade with a big state; and the process's resident
// memory, which they measure idle servers by.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <fstream>
#include <vector>

#include <hotswap/hotswap.hpp>

#include "anemone/account.hpp"

namespace bench {

struct Size {};
using Ledger = hotswap::interface<"Ledger", hotswap::call_msg<Size, long>>;
struct LedgerV2 {
  using interface = Ledger;
  static constexpr int vsn = 2;
  using state = std::vector<anemone::v2::Account>;
  static state init(const state& accounts) { return accounts; }
  static long handle_call(const Size&, const state& s) { return static_cast<long>(s.size()); }
};
struct LedgerV3 {
  using interface = Ledger;
  static constexpr int vsn = 3;
  using state = std::vector<anemone::v3::Account>;
  using state_history = hotswap::state_history<hotswap::version<2, std::vector<anemone::v2::Account>>>;
  static state init() { return {}; }
  static long handle_call(const Size&, const state& s) { return static_cast<long>(s.size()); }
};

/// `count` accounts, v2: "account i", score i % 1000, stage i % 3.
inline std::vector<anemone::v2::Account> accounts(std::size_t count) {
  std::vector<anemone::v2::Account> made(count);
  for (std::size_t i = 0; i < count; ++i)
    made[i] = {"account " + std::to_string(i), static_cast<int>(i % 1000), static_cast<int>(i % 3)};
  return made;
}

inline std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace bench
