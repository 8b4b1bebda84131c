// A version with bit-fields.
// expect: version_has_a_bit_field
// expect: declare the field as a whole integer
#include <cstdint>
#include <hotswap/hotswap.hpp>

namespace v1 {
#ifndef HOTSWAP_FIXED
struct Flags { unsigned red : 1; unsigned green : 1; unsigned blue : 6; };
#else
struct Flags { std::uint8_t red; std::uint8_t green; std::uint8_t blue; };
#endif
}
using FlagsSchema = hotswap::schema<"Flags", hotswap::version<1, v1::Flags>>;

int main() { return static_cast<int>(FlagsSchema::name.size()); }
