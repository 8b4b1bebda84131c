// A server's mailbox: an unbounded lock-free queue, many senders and one receiver.
//
// Messages sit in arrays of slots (segments) so that a receiver reads them in address order,
// several to a cache line, rather than chasing one allocation per message. A sender claims a
// slot with one fetch_add on the tail word, which packs the tail segment's address with the
// next free index, so that claiming a slot and learning its segment is one atomic step. A sender
// that finds the segment full links the next one (twice the size, up to a limit) and moves the
// tail on. A segment is freed when the receiver has left it and every sender that overflowed it
// is done with it: the sender that moves the tail on learns how many did, from the index.
//
// Once a backlog of more than a few MiB has drained, the mailbox says so, and the runtime gives
// the freed memory back to the system when it next idles (malloc's free lists would otherwise
// keep it, and the process's size, for good).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "../abi/envelope.hpp"
#include "../common/std_algorithm.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace hotswap::detail {

/// Returns what malloc holds free to the system (glibc: malloc_trim; elsewhere nothing to do).
inline void give_back_free_memory() noexcept {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

class mailbox {
 public:
  mailbox() {
    segment* first = segment::make(first_capacity);
    head_ = first;
    tail_.store(pack_tail(first, 0), std::memory_order_relaxed);
  }
  mailbox(const mailbox&) = delete;
  mailbox& operator=(const mailbox&) = delete;

  /// Frees the segments; the owner has taken out and discarded every message first.
  ~mailbox() {
    segment* last = tail_segment(tail_.load(std::memory_order_acquire));
    for (segment* at = head_; at != last;) {
      segment* next = at->next.load(std::memory_order_acquire);
      at->drop(1);
      at = next;
    }
    last->drop(1 + tail_reference);
  }

  /// Any thread. `fill(envelope&)` writes the message; it must not throw.
  template <class Fill>
  void push(Fill&& fill) {
    for (;;) {
      const std::uintptr_t word = tail_.fetch_add(1, std::memory_order_acq_rel);
      segment* at = tail_segment(word);
      const std::uint32_t index = tail_index(word);
      if (index < at->capacity) {
        envelope& claimed = at->slots()[index];
        fill(claimed);
        std::atomic_ref(claimed.ready).store(1, std::memory_order_release);
        return;
      }
      move_tail_past(at);
    }
  }

  /// Receiver only: the oldest message, or null when none has arrived.
  envelope* front() noexcept {
    for (;;) {
      if (head_index_ < head_->capacity) {
        envelope& next = head_->slots()[head_index_];
        return std::atomic_ref(next.ready).load(std::memory_order_acquire) ? &next : nullptr;
      }
      segment* following = head_->next.load(std::memory_order_acquire);
      if (!following) return nullptr;
      segment* left = head_;
      head_ = following;
      head_index_ = 0;
      drained_since_empty_ += left->capacity;
      left->drop(1);
    }
  }

  /// Receiver only, with the mailbox found empty: whether more than `backlog_to_give_back` bytes
  /// of messages went through it since it was last empty (a backlog, whose memory is free now).
  bool drained_after_backlog() noexcept {
    return std::exchange(drained_since_empty_, 0) * sizeof(slot) > backlog_to_give_back;
  }

  /// Receiver only: removes the message front() returned.
  void pop() noexcept { ++head_index_; }

  /// Receiver only: how many messages have arrived and wait (walks them; for status reports).
  std::size_t size() noexcept {
    std::size_t count = 0;
    std::uint32_t index = head_index_;
    for (segment* at = head_; at; at = at->next.load(std::memory_order_acquire), index = 0)
      for (; index < at->capacity && std::atomic_ref(at->slots()[index].ready).load(std::memory_order_acquire); ++index)
        ++count;
    return count;
  }

 private:
  using slot = envelope;

  struct alignas(alignof(slot)) segment {
    std::atomic<segment*> next{nullptr};
    // The receiver's reference, plus a bias held while the tail may still point here; the
    // sender that moves the tail on trades the bias for the number of senders that overflowed.
    std::atomic<std::int64_t> references{1 + tail_reference};
    std::uint32_t capacity;

    slot* slots() noexcept { return reinterpret_cast<slot*>(this + 1); }

    static segment* make(std::uint32_t capacity) {
      void* memory = ::operator new (sizeof(segment) + capacity * sizeof(slot), std::align_val_t{alignof(segment)});
      if (reinterpret_cast<std::uintptr_t>(memory) >> (64 - index_bits)) {  // tagged or above 2^48: cannot pack
        ::operator delete (memory, std::align_val_t{alignof(segment)});
        throw std::bad_alloc();
      }
      auto* made = ::new (memory) segment{};
      made->capacity = capacity;
      for (std::uint32_t i = 0; i < capacity; ++i) ::new (static_cast<void*>(made->slots() + i)) slot{};
      return made;
    }
    void drop(std::int64_t count) noexcept {
      if (references.fetch_sub(count, std::memory_order_acq_rel) == count) {
        this->~segment();  // slots are trivially destructible
        ::operator delete (static_cast<void*>(this), std::align_val_t{alignof(segment)});
      }
    }
  };
  static_assert(sizeof(segment) % alignof(slot) == 0 && std::is_trivially_destructible_v<slot>);

  static constexpr std::uint32_t first_capacity = 4;  // an idle server costs little
  static constexpr std::uint32_t max_capacity = 512;
  static constexpr std::size_t backlog_to_give_back = std::size_t{8} << 20;
  static constexpr std::int64_t tail_reference = std::int64_t{1} << 40;
  static constexpr int index_bits = 16;
  static_assert(sizeof(std::uintptr_t) == 8, "hotswap: the mailbox packs a 48-bit address and an index in 64 bits");

  static std::uintptr_t pack_tail(segment* at, std::uint32_t index) noexcept {
    return (reinterpret_cast<std::uintptr_t>(at) << index_bits) | index;
  }
  static segment* tail_segment(std::uintptr_t word) noexcept { return reinterpret_cast<segment*>(word >> index_bits); }
  static std::uint32_t tail_index(std::uintptr_t word) noexcept {
    return static_cast<std::uint32_t>(word & ((std::uintptr_t{1} << index_bits) - 1));
  }

  // A sender found `full` full: link the next segment if nobody has, move the tail onto it if
  // nobody has, and release its hold on `full`.
  void move_tail_past(segment* full) {
    segment* next = full->next.load(std::memory_order_acquire);
    if (!next) {
      segment* fresh = segment::make(std::min(full->capacity * 2, max_capacity));
      if (full->next.compare_exchange_strong(next, fresh, std::memory_order_acq_rel, std::memory_order_acquire))
        next = fresh;
      else
        fresh->drop(1 + tail_reference);
    }
    std::uintptr_t word = tail_.load(std::memory_order_acquire);
    while (tail_segment(word) == full) {
      if (tail_.compare_exchange_weak(word, pack_tail(next, 0), std::memory_order_acq_rel, std::memory_order_acquire)) {
        const std::int64_t overflowed = tail_index(word) - std::int64_t{full->capacity};
        full->drop(tail_reference - overflowed);
        break;
      }
    }
    full->drop(1);
  }

  std::atomic<std::uintptr_t> tail_;  // senders'
  // Keeps the receiver's head off the line the senders write.
  [[maybe_unused]] unsigned char apart_[64 - sizeof(std::atomic<std::uintptr_t>)];
  segment* head_;  // the receiver's
  std::uint32_t head_index_ = 0;
  std::size_t drained_since_empty_ = 0;  // slots of the segments left since the mailbox was empty
};

}  // namespace hotswap::detail
