// Waiting for an event in a test: poll until it has happened. The limit only keeps a broken
// build from hanging; it is far beyond what a loaded 2-core machine under a sanitizer needs, so
// that reaching it means the event never came, not that the machine was slow.
#pragma once

#include <chrono>
#include <thread>

namespace testing {

template <class Happened>
bool eventually(Happened happened, std::chrono::seconds limit = std::chrono::seconds(120)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!happened()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace testing
