#include <optional>
#include <string>

#include <fmt/format.h>
#include <hotswap/hotswap.hpp>

namespace v1 { struct Point { int x = 0; }; }
namespace v2 { struct Point { long x = 0; std::optional<std::string> label; }; }
using PointSchema = hotswap::schema<"Point", hotswap::version<1, v1::Point>, hotswap::version<2, v2::Point>>;
template <hotswap::listed_in<PointSchema> T>
struct hotswap::schema_of<T> : PointSchema {};

int main() { fmt::print("{}\n", hotswap::inspect(hotswap::migrate<v2::Point>(v1::Point{7}))); }
