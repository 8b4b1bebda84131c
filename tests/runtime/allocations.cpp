// Every form that takes memory from malloc is replaced, so that AddressSanitizer sees malloc and
// free paired (its own operator new is not mixed with this free); the aligned forms stay its own.
#include "allocations.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> counted{0};
}  // namespace

void testing::count_allocations(bool on) noexcept {
  if (on) counted = 0;
  counting = on;
}

std::size_t testing::allocations_counted() noexcept {
  return counted.load();
}

void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) counted.fetch_add(1, std::memory_order_relaxed);
  if (void* made = std::malloc(size == 0 ? 1 : size)) return made;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  return ::operator new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return ::operator new(size, std::nothrow);
}
void operator delete(void* gone) noexcept {
  std::free(gone);
}
void operator delete[](void* gone) noexcept {
  std::free(gone);
}
void operator delete(void* gone, std::size_t) noexcept {
  std::free(gone);
}
void operator delete[](void* gone, std::size_t) noexcept {
  std::free(gone);
}
void operator delete(void* gone, const std::nothrow_t&) noexcept {
  std::free(gone);
}
void operator delete[](void* gone, const std::nothrow_t&) noexcept {
  std::free(gone);
}
