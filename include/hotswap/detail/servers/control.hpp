// Sys requests (the machinery; hotswap/sys.hpp has the requests): a function run on the server
// between two messages, also while it is suspended, on the calling thread when no thread is inside its handler.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "../../result.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../runtime/dispatch.hpp"
#include "../runtime/reply_slot.hpp"
#include "../runtime/runtime.hpp"
#include "send.hpp"
#include "table_of.hpp"

namespace hotswap::detail {

template <class Result, class Run>
struct control_call final : control_request {
  Run body;
  std::optional<hotswap::result<Result>> answer;
  explicit control_call(Run run)
      : control_request([](reply_slot_base* self) noexcept { delete static_cast<control_call*>(self); }),
        body(std::move(run)) {
    this->run = [](control_request& self, server_core& server) noexcept {
      auto& call = static_cast<control_call&>(self);
      outcome failed;
      report_failure(failed, [&] { call.answer.emplace(call.body(server)); });
      if (failed.failed)
        call.fail(errc::handler_failed, std::move(failed.what));
      else
        call.finish(answered);
    };
  }
  /// Its answer, once it has run (or the failure that kept it from running).
  hotswap::result<Result> take() {
    if (!answer) return failure;
    return std::move(*answer);
  }
};

/// Whether a sys request can be sent to `server` at all, and why not.
template <class Handle>
hotswap::result<void> control_allowed(const Handle& server) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (server.core() == current_server()) return error{errc::calling_self, "a server cannot wait for itself"};
  return {};
}

/// Runs `request` on this thread if no thread is inside the server's handler (it is on the pool,
/// idle or only watched by a worker) and no sys request is ahead of it: no worker has to be woken
/// for it (a wake costs 20-80 us) or reached across cores, whatever waits in the mailbox. False
/// if it must be sent instead.
template <class = void>
bool run_control_here(server_core& server, control_request& request) noexcept {
  // A sys request ahead of it goes first: the one running or watching the server serves both.
  if (server.runs_on != &the_runtime().pool || server.controls.load(std::memory_order_acquire)) return false;
  std::uint32_t expected = server.run_state.load(std::memory_order_relaxed);
  do
    if (expected != server_core::idle && (expected & ~server_core::notified) != server_core::watched) return false;
  while (!server.run_state.compare_exchange_weak(expected, server_core::running, std::memory_order_seq_cst));
  const bool ran = server.controls.load(std::memory_order_acquire) == nullptr;
  if (ran) {
    server_core*& current = current_server();
    server_core* const outer = std::exchange(current, &server);
    if (server.alive.load(std::memory_order_acquire))
      request.run(request, server);
    else
      request.fail(errc::no_server, "the server has stopped");
    current = outer;
  }
  // Messages that were there, came meanwhile, or were held until a resume: the pool takes over.
  // (Those that come to a suspended server wait for its resume: no worker is woken for them.)
  for (;;) {
    if (server.has_input()) {
      server.runs_on->schedule(server);
      break;
    }
    expected = server_core::running;
    if (server.run_state.compare_exchange_strong(expected, server_core::idle, std::memory_order_seq_cst)) break;
    server.run_state.exchange(server_core::running, std::memory_order_seq_cst);  // a message came meanwhile
  }
  return ran;
}

/// Runs `run(server_core&) -> result<Result>` on the server, between its messages (also while
/// suspended), and waits for it at most `timeout`. On an idle server it runs at once on the
/// calling thread; the timeout then bounds nothing (sys requests are short).
template <class Result, class Run>
result<Result> control(const auto& server, std::chrono::nanoseconds timeout, Run run) {
  if (auto allowed = control_allowed(server); !allowed) return allowed.error();
  control_call<Result, Run> here(std::move(run));  // on the stack: nobody else sees it if it runs here
  if (run_control_here(*server.core(), here)) return here.take();
  auto* request = new control_call<Result, Run>(std::move(here.body));
  if (!server.core()->deliver_control(*request)) {
    delete request;
    return error{errc::no_server, {}};
  }
  if (!request->wait(timeout, before_parking<>))
    return error{errc::timeout, "no answer within " + std::to_string(timeout.count() / 1'000'000) +
                                    " ms: the request may yet take effect (sys::get_status shows whether it did)"};
  const std::unique_ptr<control_call<Result, Run>> done(request);
  return done->take();
}

/// control() in two halves: a sys request sent now and waited for later, so that one thread can
/// have many servers serve theirs at once (a release suspends all its servers in parallel, under
/// one deadline). An idle server serves it at once, on this thread.
template <class Result, class Run>
class sent_control {
 public:
  sent_control(const auto& server, Run run) {
    if (auto allowed = control_allowed(server); !allowed) {
      failure_ = allowed.error();
      return;
    }
    request_ = new control_call<Result, Run>(std::move(run));
    if (run_control_here(*server.core(), *request_)) return;
    if (!server.core()->deliver_control(*request_)) {
      delete std::exchange(request_, nullptr);
      failure_ = error{errc::no_server, {}};
    }
  }
  sent_control(sent_control&& other) noexcept
      : request_(std::exchange(other.request_, nullptr)), failure_(std::move(other.failure_)) {}
  sent_control& operator=(sent_control&&) = delete;
  /// Not waited for: the server frees it after serving it.
  ~sent_control() {
    if (request_ && request_->wait(std::chrono::nanoseconds::zero(), [] {})) delete request_;
  }

  /// Its answer, waiting until `deadline` at most (once).
  result<Result> wait_until(std::chrono::steady_clock::time_point deadline) {
    if (!request_) return failure_;
    control_call<Result, Run>* request = std::exchange(request_, nullptr);
    const auto left = std::max<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now(), {});
    if (!request->wait(left, before_parking<>))
      return error{errc::timeout, "no answer in time: the request may yet take effect"};
    const std::unique_ptr<control_call<Result, Run>> done(request);
    return done->take();
  }

 private:
  control_call<Result, Run>* request_ = nullptr;
  hotswap::error failure_{};
};

}  // namespace hotswap::detail
