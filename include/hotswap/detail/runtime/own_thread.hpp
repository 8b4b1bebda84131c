// A thread of its own for a server whose handlers block.
#pragma once

#include <atomic>
#include <cstdint>

#include "../common/sync.hpp"
#include "dispatch.hpp"
#include "worker_pool.hpp"

namespace hotswap::detail {

/// A thread for one server whose handlers block. It runs the server when scheduled (as a pool
/// worker would), holds a reference to it until it has ended, and then hands whatever still
/// arrives to the pool, which refuses it.
template <class = void>
class basic_own_thread final : public executor {
 public:
  explicit basic_own_thread(server_core& server) : server_(server), thread_((server.acquire(), [this] { work(); })) {}
  ~basic_own_thread() override {
    stopping_.store(true, std::memory_order_seq_cst);
    wake();
    if (!thread_.is_this_thread()) thread_.join();  // else it ends by itself, detached
  }
  void schedule(server_core&) override {
    scheduled_.store(true, std::memory_order_seq_cst);
    if (exited_.load(std::memory_order_seq_cst))
      hand_to_pool();
    else
      wake();
  }
  bool others_waiting() const noexcept override { return false; }
  void wake() noexcept { futex_bump(wake_word_, 1); }

 private:
  void hand_to_pool() {
    if (scheduled_.exchange(false, std::memory_order_seq_cst)) shared_pool().schedule(server_);
  }
  void work() {
    for (;;) {
      const std::uint32_t seen = wake_word_.load(std::memory_order_seq_cst);
      if (scheduled_.exchange(false, std::memory_order_seq_cst)) run_server(server_, *this);
      if (!server_.alive.load(std::memory_order_seq_cst) || stopping_.load(std::memory_order_seq_cst)) break;
      if (!scheduled_.load(std::memory_order_seq_cst)) futex_wait(wake_word_, seen);
    }
    exited_.store(true, std::memory_order_seq_cst);
    hand_to_pool();     // scheduled after the last look: one of us hands it over
    server_.release();  // may destroy this executor: touch nothing after it
  }
  server_core& server_;
  std::atomic<std::uint32_t> wake_word_{0};
  std::atomic<bool> scheduled_{false};
  std::atomic<bool> exited_{false};
  std::atomic<bool> stopping_{false};
  thread thread_;
};
using own_thread = basic_own_thread<>;

}  // namespace hotswap::detail
