// A field whose type has no default constructor, and no default member initializer.
// expect: version_is_not_default_constructible
// expect: give a field whose type has no default constructor a default member initializer
#include <hotswap/hotswap.hpp>

struct Id {
  explicit Id(int v) : value(v) {}
  int value;
};
namespace v1 {
#ifndef HOTSWAP_FIXED
struct Record { int a = 0; Id id; };
#else
struct Record { int a = 0; Id id{0}; };
#endif
}
using RecordSchema = hotswap::schema<"Record", hotswap::version<1, v1::Record>>;

int main() { return static_cast<int>(RecordSchema::name.size()); }
