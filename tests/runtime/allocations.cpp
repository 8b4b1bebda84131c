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
