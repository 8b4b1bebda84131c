// The shared pool of worker threads that runs servers, and its monitor of slow handlers.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "../common/spin_lock.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../common/sync.hpp"
#include "dispatch.hpp"
#include "slow_handlers.hpp"

namespace hotswap::detail {

template <class = void>
class basic_worker_pool;

template <class>
class basic_worker_pool final : public executor {
 public:
  explicit basic_worker_pool(unsigned threads) {
    for (unsigned i = 0; i < std::clamp(threads, 1u, unsigned{max_threads / 2}); ++i) add_worker();
    watcher_ = thread([this] { watch_handlers(); });
  }
  // The code a new worker runs is the code that made the pool: the program's, never a module's.
  // (A module's call that blocks may start a worker.)
  ~basic_worker_pool() override { stop(); }

  void schedule(server_core& server) override {
    server.acquire();
    {
      const spin_guard hold(lock_);
      queue_.push_back(&server);
      queued_.fetch_add(1, std::memory_order_seq_cst);
    }
    if (spinners_.load(std::memory_order_seq_cst) == 0 && sleepers_.load(std::memory_order_seq_cst) > 0) wake_one();
  }
  bool others_waiting() const noexcept override { return queued_.load(std::memory_order_relaxed) != 0; }
  /// How many workers it has now (it adds some: for handlers that call or block).
  std::uint32_t workers() const noexcept { return workers_.load(std::memory_order_relaxed); }
  /// How many handlers its monitor has found holding a worker past slow_handler_after.
  std::uint64_t slow_handlers() const noexcept { return watch_.marked(); }

  /// A backlog has drained: its memory goes back to the system once every worker has idled for
  /// `idle_before_giving_back` (not before: a burst that follows at once would fault it all in
  /// again).
  void give_back_memory_when_idle() noexcept { give_back_.store(true, std::memory_order_relaxed); }

  /// The calling worker is about to block: wake or start another. (If no thread can be
  /// started, the pool carries on with those it has.)
  void blocking() noexcept {
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      wake_one();
      return;
    }
    const spin_guard hold(lock_);
    if (stopping_.load() || threads_.size() >= max_threads) return;
    try {
      add_worker();
    } catch (...) {
    }
  }

  /// Joins the workers (once every queued server has run).
  void stop() noexcept {
    std::vector<thread> joining;
    {
      const spin_guard hold(lock_);
      stopping_.store(true, std::memory_order_seq_cst);
      joining.swap(threads_);
    }
    futex_bump(watch_word_, 1);
    watcher_.join();
    futex_bump(wake_word_, 1 << 30);
    for (auto& worker : joining) worker.join();
  }

  static basic_worker_pool*& this_thread_pool() noexcept {
    thread_local basic_worker_pool* pool = nullptr;
    return pool;
  }

 private:
  static constexpr std::size_t max_threads = 512;
  static constexpr std::uint32_t max_compensating = 64;  // workers the monitor may add
  static constexpr std::chrono::milliseconds idle_before_giving_back{20};
  // The monitor looks this often while a handler runs, and backs off to the second when none does.
  static constexpr std::chrono::microseconds watch_busy{500};
  static constexpr std::chrono::milliseconds watch_idle{50};

  void add_worker() {  // under lock_ (or in the constructor)
    start_worker_(*this, threads_.size());
    workers_.fetch_add(1, std::memory_order_release);
  }
  void (*const start_worker_)(basic_worker_pool&, std::size_t) = [](basic_worker_pool& pool, std::size_t index) {
    pool.threads_.emplace_back([&pool, index] { pool.work(pool.activities_[index]); });
  };

  void watch_handlers() {
    handler_watch& watch = watch_;
    std::chrono::nanoseconds interval = watch_idle;
    std::uint32_t added = 0, added_now = 0;
    // A worker for a stuck one only if servers wait and no worker is idle (parked workers it
    // added before are used first), one per waiting server at most.
    const auto compensate = [&] {
      if (queued_.load(std::memory_order_seq_cst) <= added_now || sleepers_.load(std::memory_order_seq_cst) != 0 ||
          spinners_.load(std::memory_order_seq_cst) != 0 || added >= max_compensating)
        return false;
      const spin_guard hold(lock_);
      if (stopping_.load() || threads_.size() >= max_threads) return false;
      try {
        add_worker();
      } catch (...) {  // no thread to be had: the pool carries on with those it has
        return false;
      }
      ++added, ++added_now;
      return true;
    };
    for (;;) {
      const std::uint32_t seen =
          watch_word_.load(std::memory_order_acquire);  // before stopping_: stop() bumps it after
      if (stopping_.load(std::memory_order_acquire)) return;
      futex_wait(watch_word_, seen, interval);
      added_now = 0;
      const bool busy = watch.look(activities_.get(), workers_.load(std::memory_order_acquire),
                                   std::chrono::steady_clock::now(), compensate);
      interval =
          busy ? std::chrono::nanoseconds(watch_busy) : std::min<std::chrono::nanoseconds>(interval * 2, watch_idle);
    }
  }

  server_core* take() {
    if (queued_.load(std::memory_order_acquire) == 0) return nullptr;
    const spin_guard hold(lock_);
    if (queue_head_ == queue_.size()) return nullptr;
    server_core* next = queue_[queue_head_++];
    if (queue_head_ == queue_.size()) {
      queue_.clear();
      queue_head_ = 0;
    } else if (queue_head_ > 1024 && queue_head_ * 2 > queue_.size()) {
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(queue_head_));
      queue_head_ = 0;
    }
    // More waiting and nobody spinning to take them: wake a sleeper rather than leave them
    // behind this worker's batch.
    if (queued_.fetch_sub(1, std::memory_order_seq_cst) > 1 && spinners_.load(std::memory_order_seq_cst) == 0 &&
        sleepers_.load(std::memory_order_seq_cst) > 0)
      wake_one();
    return next;
  }
  void wake_one() noexcept { futex_bump(wake_word_, 1); }

  void work(worker_activity& activity) {
    this_thread_pool() = this;
    current_activity() = &activity;
    for (;;) {
      if (server_core* server = take()) {
        run_server(*server, *this);
        server->release();
        continue;
      }
      if (stopped()) return;
      std::uint32_t none = 0;
      if (spinners_.compare_exchange_strong(none, 1, std::memory_order_seq_cst)) {
        const bool found = spin_until([&] { return others_waiting() || stopped(); });
        spinners_.store(0, std::memory_order_seq_cst);
        if (found) continue;
      }
      const bool last_awake = sleepers_.fetch_add(1, std::memory_order_seq_cst) + 1 == workers_.load();
      const std::uint32_t seen = wake_word_.load(std::memory_order_seq_cst);
      if (queued_.load(std::memory_order_seq_cst) == 0 && !stopped()) {
        if (last_awake && give_back_.load(std::memory_order_relaxed)) {
          // Memory a drained backlog freed goes back once the whole pool has idled a while.
          futex_wait(wake_word_, seen, idle_before_giving_back);
          if (wake_word_.load(std::memory_order_seq_cst) == seen && queued_.load(std::memory_order_seq_cst) == 0 &&
              give_back_.exchange(false, std::memory_order_relaxed))
            give_back_free_memory();
        } else {
          futex_wait(wake_word_, seen);
        }
      }
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  bool stopped() const noexcept { return stopping_.load(std::memory_order_acquire) && !others_waiting(); }

  spin_lock lock_;
  std::vector<server_core*> queue_;  // from queue_head_ on
  std::size_t queue_head_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<thread> threads_;
  alignas(64) std::atomic<std::size_t> queued_{0};
  alignas(64) std::atomic<std::uint32_t> spinners_{0};
  std::atomic<std::uint32_t> sleepers_{0};
  std::atomic<std::uint32_t> wake_word_{0};
  std::atomic<std::uint32_t> workers_{0};
  std::atomic<bool> give_back_{false};
  std::unique_ptr<worker_activity[]> activities_ = std::make_unique<worker_activity[]>(max_threads);
  std::atomic<std::uint32_t> watch_word_{0};
  handler_watch watch_;  // the monitor's own, but for its count
  thread watcher_;
};

using worker_pool = basic_worker_pool<>;

template <class = void>
worker_pool& shared_pool();

}  // namespace hotswap::detail
