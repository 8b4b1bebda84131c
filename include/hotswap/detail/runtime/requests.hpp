// Calls sent without waiting (OTP's gen_server:send_request/2, and the request id collections of
// OTP 25): each reply lands in a slot that, once answered, is handed to a collector the sender
// waits on for one, any or all of its requests; or, sent from a server, travels back to it as a
// `response` info, so that no worker blocks.
//
// A slot starts abandoned: whoever answers it (the server, or the runtime failing it) calls its
// `free`, which hands it on instead of freeing it. So a slot is never waited on by its own
// futex, and the collector may go before its slots do.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "../../result.hpp"
#include "../common/spin_lock.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../common/sync.hpp"
#include "exits.hpp"
#include "reply_slot.hpp"
#include "server_core.hpp"

namespace hotswap::detail {

// -- sending --

/// Sends call `message` to `to` as its message number `kind`, its answer to the slot
/// `make_slot()` makes (after the message is packed: what throws comes first). A server that had
/// stopped, or none (an empty handle), fails the slot at once with errc::no_server.
template <class M, class MakeSlot>
void send_call(server_core* to, std::uint32_t kind, M&& message, MakeSlot make_slot) {
  envelope packed{};
  pack_sent<std::remove_cvref_t<M>>(packed, kind, std::forward<M>(message));
  reply_slot_base* slot;
  try {
    slot = make_slot();
  } catch (...) {
    discard_sent<std::remove_cvref_t<M>>(packed, kind);
    throw;
  }
  const bool sent = to && to->deliver([&](envelope& into) noexcept {
    std::memcpy(into.payload, packed.payload, sizeof packed.payload);
    into.kind = kind;
    into.reply = slot;
  });
  if (!sent) {
    discard_sent<std::remove_cvref_t<M>>(packed, kind);
    slot->fail(errc::no_server, to ? "the server had stopped" : "an empty server handle");
  }
}

// -- waiting in the sender --

/// Where the answered slots of one sender's requests gather. Plain data, counted: the sender
/// and each slot not yet answered hold it, and whoever lets go last frees it.
struct request_collector {
  std::atomic<std::uint32_t> holders{1};
  std::atomic<std::uint32_t> answers{0};  // bumped at each answer: the futex the sender waits on
  spin_lock lock;                         // guards what follows
  reply_slot_base* answered = nullptr;    // newest first, through collected_slot::next
  bool closed = false;                    // the sender has gone: answers are freed as they come

  void release() noexcept {
    if (holders.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

/// A request's slot while it waits for its answer, and after, in its collector's list.
template <class Reply>
struct collected_slot final : reply_slot<Reply> {
  request_collector* collector;
  reply_slot_base* next = nullptr;
  std::uint64_t id;

  collected_slot(request_collector& to, std::uint64_t request) : collector(&to), id(request) {
    this->free = [](reply_slot_base* self) noexcept { static_cast<collected_slot*>(self)->collect(); };
    this->state.store(reply_slot_base::abandoned, std::memory_order_relaxed);
    collector->holders.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  void collect() noexcept {
    request_collector* const to = collector;
    bool taken;
    {
      const spin_guard hold(to->lock);
      taken = !to->closed;
      if (taken) next = std::exchange(to->answered, this);  // the sender's now: not touched after
    }
    if (!taken) delete this;
    to->answers.fetch_add(1, std::memory_order_release);
    futex_wake(to->answers, 1);
    to->release();
  }
};

/// The sender's side of its requests of reply type `Reply`: sends them and takes their answers,
/// each tagged with its request id. Not shared between threads.
template <class Reply>
class request_box {
 public:
  request_box() : collector_(new request_collector) {}
  request_box(request_box&& other) noexcept
      : collector_(std::exchange(other.collector_, nullptr)), pending_(std::exchange(other.pending_, 0)) {}
  request_box& operator=(request_box&& other) noexcept {
    std::swap(collector_, other.collector_);
    std::swap(pending_, other.pending_);
    return *this;
  }
  /// Answers not yet taken are freed as they come (OTP's abandon).
  ~request_box() {
    if (!collector_) return;
    reply_slot_base* answered;
    {
      const spin_guard hold(collector_->lock);
      collector_->closed = true;
      answered = std::exchange(collector_->answered, nullptr);
    }
    while (answered) {
      auto* slot = static_cast<collected_slot<Reply>*>(answered);
      answered = slot->next;
      delete slot;
    }
    collector_->release();
  }

  /// Sends `message` to `to` as call number `kind`, its answer to come here; its id. If the server
  /// had stopped, or `to` is null (an empty handle), the answer, errc::no_server, is here already.
  template <class M>
  std::uint64_t send(server_core* to, std::uint32_t kind, M&& message) {
    const std::uint64_t id = new_id();
    send_call(to, kind, std::forward<M>(message), [&] {
      auto* slot = new collected_slot<Reply>(*collector_, id);
      ++pending_;
      return slot;
    });
    return id;
  }

  /// How many answers are still to be taken.
  std::size_t pending() const noexcept { return pending_; }

  /// The next answer to come (any request's), with its id; errc::timeout if none came in
  /// `timeout`; nullopt if none is pending.
  std::optional<std::pair<std::uint64_t, hotswap::result<Reply>>> take_any(std::chrono::nanoseconds timeout,
                                                                           void (*before_parking)()) {
    return take([](std::uint64_t) { return true; }, timeout, before_parking);
  }
  /// The answer of request `id`; nullopt if it is not pending (other answers stay to be taken).
  std::optional<hotswap::result<Reply>> take_one(std::uint64_t id, std::chrono::nanoseconds timeout,
                                                 void (*before_parking)()) {
    auto taken = take([id](std::uint64_t answered) { return answered == id; }, timeout, before_parking);
    if (!taken) return std::nullopt;
    return std::move(taken->second);
  }

 private:
  template <class Wanted>
  std::optional<std::pair<std::uint64_t, hotswap::result<Reply>>> take(Wanted wanted, std::chrono::nanoseconds timeout,
                                                                       void (*before_parking)()) {
    if (pending_ == 0) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + std::min(timeout, longest_wait);
    bool parked_once = false;
    for (;;) {
      const std::uint32_t seen = collector_->answers.load(std::memory_order_acquire);
      if (collected_slot<Reply>* slot = unlink(wanted)) {
        --pending_;
        const std::unique_ptr<collected_slot<Reply>> done(slot);
        if (slot->value) return std::pair{slot->id, hotswap::result<Reply>(std::move(*slot->value))};
        return std::pair{slot->id, hotswap::result<Reply>(slot->failure)};
      }
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero())
        return std::pair{std::uint64_t{0},
                         hotswap::result<Reply>(error{
                             errc::timeout, "no reply within " + std::to_string(timeout.count() / 1'000'000) + " ms"})};
      if (!std::exchange(parked_once, true)) before_parking();
      futex_wait(collector_->answers, seen, left);
    }
  }

  /// The oldest answered slot that `wanted` takes, out of the list.
  template <class Wanted>
  collected_slot<Reply>* unlink(Wanted& wanted) {
    const spin_guard hold(collector_->lock);
    reply_slot_base** found_at = nullptr;
    for (reply_slot_base** at = &collector_->answered; *at; at = &static_cast<collected_slot<Reply>*>(*at)->next)
      if (wanted(static_cast<collected_slot<Reply>*>(*at)->id)) found_at = at;  // the last in the list: the oldest
    if (!found_at) return nullptr;
    auto* found = static_cast<collected_slot<Reply>*>(*found_at);
    *found_at = found->next;
    return found;
  }

  request_collector* collector_;
  std::size_t pending_ = 0;
};

// -- answers as infos, to a server --

/// hotswap::response<Reply>: the answer to a request a server sent (hotswap::send_request with a
/// server to answer), as an info to that server.
template <class Reply>
struct response_message {
  std::uint64_t request = 0;  ///< what send_request returned
  hotswap::result<Reply> reply = error{errc::no_reply, {}};
};

/// A request's slot whose answer goes to a server's mailbox as a response info.
template <class Reply>
struct forwarded_slot final : reply_slot<Reply> {
  server_core* requester;  // holding a reference
  std::uint32_t index;     // of response_message<Reply> in its interface
  std::uint64_t id;

  forwarded_slot(server_core& to, std::uint32_t response_index, std::uint64_t request)
      : requester(&to), index(response_index), id(request) {
    this->free = [](reply_slot_base* self) noexcept { static_cast<forwarded_slot*>(self)->forward(); };
    this->state.store(reply_slot_base::abandoned, std::memory_order_relaxed);
    requester->acquire();
  }

 private:
  void forward() noexcept {
    try {
      response_message<Reply> answer{
          id, this->value ? hotswap::result<Reply>(std::move(*this->value)) : hotswap::result<Reply>(this->failure)};
      deliver_info(*requester, index, std::move(answer));
    } catch (...) {  // out of memory: the requester is not told
    }
    requester->release();
    delete this;
  }
};

/// Sends `message` to `to` as call number `kind`, its answer to go to `requester` as its info
/// number `response_index`; the request's id. (A server that had stopped, or none: the answer,
/// errc::no_server, is on its way already.)
template <class Reply, class M>
std::uint64_t send_forwarded(server_core* to, std::uint32_t kind, M&& message, server_core& requester,
                             std::uint32_t response_index) {
  const std::uint64_t id = new_id();
  send_call(to, kind, std::forward<M>(message),
            [&] { return new forwarded_slot<Reply>(requester, response_index, id); });
  return id;
}

}  // namespace hotswap::detail
