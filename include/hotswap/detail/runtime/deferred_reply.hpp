// A call answered later (OTP's gen_server:reply/2, CAF's response_promise): the caller's reply
// slot, held by a counted handle that a handler keeps, hands to another server, or answers from
// a timer's info. Answered once: a second answer is refused; the last copy dropped unanswered
// fails the call at once with errc::no_reply.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <utility>

#include "../../result.hpp"
#include "reply_slot.hpp"

namespace hotswap::detail {

/// What the copies of one handle share. Plain data: whichever image lets go last frees it.
struct deferred_record {
  std::atomic<std::uint32_t> holders{1};
  std::atomic<bool> answered{false};
  reply_slot_base* slot;
};

/// hotswap::reply_to<Reply>: the right to answer one call. Copies answer the same call; it is
/// data of the runtime, not of the code, so a server keeps it in its state across upgrades.
template <class Reply>
class deferred {
 public:
  static constexpr std::string_view inspect_label = "#reply_to";  ///< how inspect prints it
  deferred() = default;
  /// Takes over answering `slot` (the table's handler makes it).
  explicit deferred(reply_slot_base* slot) : record_(new deferred_record{{1}, {false}, slot}) {}
  deferred(const deferred& other) noexcept : record_(other.record_) {
    if (record_) record_->holders.fetch_add(1, std::memory_order_relaxed);
  }
  deferred(deferred&& other) noexcept : record_(std::exchange(other.record_, nullptr)) {}
  deferred& operator=(deferred other) noexcept {
    std::swap(record_, other.record_);
    return *this;
  }
  ~deferred() { drop(); }

  /// Answers the call: its caller's hotswap::call returns `value`. Refused with
  /// errc::already_replied if it was answered (by any copy), errc::no_reply for an empty handle.
  /// (A caller that has given up waiting gets nothing; that is no error, as in OTP.)
  template <class R = Reply>
  hotswap::result<void> reply(R&& value) {
    if (!record_) return error{errc::no_reply, "an empty reply handle"};
    Reply made(std::forward<R>(value));  // what can throw, before the call counts as answered
    if (record_->answered.exchange(true, std::memory_order_acq_rel))
      return error{errc::already_replied, "this call was answered already"};
    static_cast<reply_slot<Reply>*>(record_->slot)->answer(std::move(made));
    return {};
  }
  /// Whether it was answered (by any copy).
  bool replied() const noexcept { return record_ && record_->answered.load(std::memory_order_acquire); }
  explicit operator bool() const noexcept { return record_ != nullptr; }

  /// The handler's own copy, after the handler threw: if no other copy holds the call and it is
  /// unanswered, the call is handed back (true), for the crash to fail it as any call.
  bool hand_back() noexcept {
    if (!record_ || record_->holders.load(std::memory_order_acquire) != 1 ||
        record_->answered.exchange(true, std::memory_order_acq_rel))
      return false;
    delete std::exchange(record_, nullptr);
    return true;
  }

 private:
  void drop() noexcept {
    deferred_record* const record = std::exchange(record_, nullptr);
    if (!record || record->holders.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (!record->answered.exchange(true, std::memory_order_acq_rel))
      record->slot->fail(errc::no_reply, "the server dropped the call unanswered");
    delete record;
  }
  deferred_record* record_ = nullptr;
};

}  // namespace hotswap::detail
