// A call whose reply changed between versions of the interface, answered through a reply_to:
// the reply could not be migrated down for a caller built against the earlier version.
// expect: a call whose reply changed between versions of the interface answers by returning it
#include <hotswap/hotswap.hpp>

namespace v1 {
struct Total {
  int sum = 0;
};
}  // namespace v1
namespace v2 {
struct Total {
  int sum = 0;
  int count = 0;
};
}  // namespace v2
using TotalSchema = hotswap::schema<"Total", hotswap::version<1, v1::Total>, hotswap::version<2, v2::Total>>;
template <hotswap::listed_in<TotalSchema> T>
struct hotswap::schema_of<T> : TotalSchema {};
template <>
struct hotswap::step<v2::Total, v1::Total> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"count">};
};

struct Get {};
using V1 = hotswap::interface<"Sums", hotswap::call_msg<Get, v1::Total>>;
using V2 = hotswap::interface<"Sums", hotswap::follows<V1>, hotswap::call_msg<Get, v2::Total>>;

struct Sums {
  using interface = V2;
  static constexpr int vsn = 2;
  struct state {};
  static state init() { return {}; }
#ifndef HOTSWAP_FIXED
  static void handle_call(const Get&, state&, hotswap::reply_to<v2::Total> from) {
    (void)hotswap::reply(from, v2::Total{});
  }
#else
  static v2::Total handle_call(const Get&, state&) { return {}; }
#endif
};

int main() { return static_cast<int>(hotswap::table_of<Sums>.message_count); }
