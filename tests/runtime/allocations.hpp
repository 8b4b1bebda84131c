// Counting the allocations of every thread, while asked: this test executable's operator new
// and delete (runtime/allocations.cpp, a file of their own so that no caller sees their bodies:
// malloc and free, as the default ones).
#pragma once

#include <cstddef>

namespace testing {

/// Starts (true) or stops counting; the count is kept until the next start.
void count_allocations(bool on) noexcept;
/// The allocations counted since counting last started.
std::size_t allocations_counted() noexcept;

}  // namespace testing
