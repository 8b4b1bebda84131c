// The nested schema of the generated schema tests (tools/generate_schema_tests.py): fields of
// the generated structs hold it, alone or in containers, and its version changes with theirs.
#pragma once

#include <string>

#include <hotswap/hotswap.hpp>

namespace gen {
namespace v1 {
struct Inner {
  int x = 1;
  std::string s = "i";
  friend bool operator==(const Inner&, const Inner&) = default;
};
}  // namespace v1
namespace v2 {
struct Inner {
  int x = 1;
  std::string s = "i";
  int y = 7;
  friend bool operator==(const Inner&, const Inner&) = default;
};
}  // namespace v2
using InnerSchema = hotswap::schema<"Inner", hotswap::version<1, v1::Inner>, hotswap::version<2, v2::Inner>>;
}  // namespace gen

template <hotswap::listed_in<gen::InnerSchema> T>
struct hotswap::schema_of<T> : gen::InnerSchema {};

// Inner holds a string, so its added number is declared (its default member initializer is
// taken all the same).
template <>
struct hotswap::step<gen::v1::Inner, gen::v2::Inner> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"y">};
};
template <>
struct hotswap::step<gen::v2::Inner, gen::v1::Inner> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"y">};
};
