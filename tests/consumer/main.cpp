#include <fmt/format.h>

#include "point.hpp"

int main() {
  fmt::print("{}\n", hotswap::inspect(hotswap::migrate<v2::Point>(v1::Point{7})));
  hotswap::code_server code;
  const auto point = code.load<PointServer>(POINT_MODULE).value();
  const auto server = hotswap::start<PointServer>(point).value();
  fmt::print("{} vsn {}: x = {}\n", point->name(), point->vsn(), hotswap::call(server, Where{}).value());
}
