// A convert function whose result is not the new field's type.
// expect: declared_function_returns_the_wrong_type<
// expect: <'l', 'a', 'b', 'e', 'l'>, int, std::
// expect: return FieldType
#include <string>
#include <hotswap/hotswap.hpp>

namespace v1 { struct Tag { int label = 0; }; }
namespace v2 { struct Tag { std::string label; }; }
using TagSchema = hotswap::schema<"Tag", hotswap::version<1, v1::Tag>, hotswap::version<2, v2::Tag>>;
template <hotswap::listed_in<TagSchema> T> struct hotswap::schema_of<T> : TagSchema {};
template <> struct hotswap::step<v1::Tag, v2::Tag> {
#ifndef HOTSWAP_FIXED
  static constexpr auto rules = hotswap::rules{hotswap::convert<"label">([](int old) { return old * 2; })};
#else
  static constexpr auto rules = hotswap::rules{hotswap::convert<"label">([](int old) { return std::to_string(old * 2); })};
#endif
};

int main() { return static_cast<int>(hotswap::migrate<v2::Tag>(v1::Tag{4}).label.size()); }
