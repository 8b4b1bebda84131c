// A field whose type changes in a way that is not a widening.
// expect: field_type_changed_without_converter
// expect: declare hotswap::convert<
// expect: <'l', 'a', 'b', 'e', 'l'>
#include <string>
#include <hotswap/hotswap.hpp>

namespace v1 { struct Tag { int label = 0; }; }
namespace v2 { struct Tag { std::string label; }; }
using TagSchema = hotswap::schema<"Tag", hotswap::version<1, v1::Tag>, hotswap::version<2, v2::Tag>>;
template <hotswap::listed_in<TagSchema> T> struct hotswap::schema_of<T> : TagSchema {};
#ifdef HOTSWAP_FIXED
template <> struct hotswap::step<v1::Tag, v2::Tag> {
  static constexpr auto rules = hotswap::rules{hotswap::convert<"label">([](int old) { return std::to_string(old); })};
};
#endif

int main() { return static_cast<int>(hotswap::migrate<v2::Tag>(v1::Tag{}).label.size()); }
