#include <optional>
#include <string>

#include <hotswap/hotswap.hpp>

namespace v1 {
struct Point {
  int x = 0;
};
}  // namespace v1
namespace v2 {
struct Point {
  long x = 0;
  std::optional<std::string> label;
};
}  // namespace v2
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v2::Point>>;
template <hotswap::listed_in<PointSchema> T>
struct hotswap::schema_of<T> : PointSchema {};

struct Where {};
using PointServer = hotswap::interface<"Point", hotswap::call_msg<Where, long>>;
struct PointV2 {
  using interface = PointServer;
  static constexpr int vsn = 2;
  using state = v2::Point;
  static state init() { return hotswap::migrate<v2::Point>(v1::Point{7}); }
  static long handle_call(const Where&, const state& point) { return point.x; }
};
