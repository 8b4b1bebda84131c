// One version of a schema as the run-time registry holds it, and its description made from the
// struct at compile time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../common/hash.hpp"
#include "../reflect/fields.hpp"
#include "describe.hpp"
#include "field_kinds.hpp"

namespace hotswap::detail {

/// One version of a schema as the registry holds it (hotswap::version_info): what type-erased
/// code can know of a value. Modules hand theirs to the program.
struct version_info {
  std::string schema;
  int vsn = 0;
  std::uint64_t fingerprint = 0;
  std::vector<std::string> field_names;
  std::vector<std::string> field_types;
  friend bool operator==(const version_info&, const version_info&) = default;
};

/// The description of version `T` of its schema.
template <versioned_type T>
version_info describe_version() {
  version_info info{std::string(schema_of<T>::name), version_number<T>, fnv1a(description<T>), {}, {}};
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (info.field_names.emplace_back(field_names<T>[I]), ...);
    (info.field_types.emplace_back(description<field_type<T, I>>), ...);
  }
  (std::make_index_sequence<field_count<T>>{});
  return info;
}

// -- what differs between two versions of a schema held under one name and vsn --

using described_field = std::pair<std::string, std::string>;  // (name, type) as a description has them

/// The fields of a description (`Account@2{owner:string,balance:money}`), in order; empty if it
/// is none (a type's description is not read further than its first level).
template <class = void>
std::vector<described_field> described_fields(std::string_view description) {
  std::vector<described_field> fields;
  const std::size_t open = description.find('{');
  if (open == std::string_view::npos || description.empty() || description.back() != '}') return fields;
  const std::string_view body = description.substr(open + 1, description.size() - open - 2);
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t at = 0; at <= body.size(); ++at) {
    const char c = at < body.size() ? body[at] : ',';
    if (c == '<' || c == '{' || c == '(' || c == '[') ++depth;
    if (c == '>' || c == '}' || c == ')' || c == ']') --depth;
    if (c != ',' || depth != 0) continue;
    const std::string_view field = body.substr(start, at - start);
    const std::size_t colon = field.find(':');
    if (!field.empty()) {
      if (colon == std::string_view::npos) return {};
      fields.emplace_back(std::string(field.substr(0, colon)), std::string(field.substr(colon + 1)));
    }
    start = at + 1;
  }
  return fields;
}

/// The fields of a version the registry holds.
template <class = void>
std::vector<described_field> described_fields(const version_info& version) {
  std::vector<described_field> fields;
  for (std::size_t i = 0; i < version.field_names.size() && i < version.field_types.size(); ++i)
    fields.emplace_back(version.field_names[i], version.field_types[i]);
  return fields;
}

/// A version the registry holds as its description reads: `Account@2{owner:string,balance:money}`.
template <class = void>
std::string described(const version_info& version) {
  std::string text = version.schema + "@" + std::to_string(version.vsn) + "{";
  for (std::size_t i = 0; i < version.field_names.size() && i < version.field_types.size(); ++i)
    text += (i ? "," : "") + version.field_names[i] + ":" + version.field_types[i];
  return text + "}";
}

/// Which fields differ between `there` (another's) and `here`: `count is short there, long
/// here; shelf:string is only there; price:int only here; the same fields in another order`.
/// Empty when they are the same.
template <class = void>
std::string field_differences(const std::vector<described_field>& there, const std::vector<described_field>& here,
                              std::string_view there_is = "there", std::string_view here_is = "here") {
  std::vector<std::string> said;
  const auto find = [](const std::vector<described_field>& in, const std::string& name) {
    for (const auto& field : in)
      if (field.first == name) return &field;
    return static_cast<const described_field*>(nullptr);
  };
  for (const auto& field : there)
    if (const auto* other = find(here, field.first); !other)
      said.push_back(field.first + ":" + field.second + " is only " + std::string(there_is));
    else if (other->second != field.second)
      said.push_back(field.first + " is " + field.second + " " + std::string(there_is) + ", " + other->second + " " +
                     std::string(here_is));
  for (const auto& field : here)
    if (!find(there, field.first))
      said.push_back(field.first + ":" + field.second + " is only " + std::string(here_is));
  if (said.empty() && there != here) said.push_back("the same fields in another order");
  constexpr std::size_t shown = 8;  // a message, not a listing
  std::string text;
  for (std::size_t i = 0; i < said.size() && i < shown; ++i) text += (i ? "; " : "") + said[i];
  if (said.size() > shown) text += "; and " + std::to_string(said.size() - shown) + " more";
  return text;
}

}  // namespace hotswap::detail
