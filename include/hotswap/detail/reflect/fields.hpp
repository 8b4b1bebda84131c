// Structure reflection: the count, types, names and references of an aggregate's fields.
//
// Boost.PFR's technique, our own code: PFR 1.81's tuples are slow to compile for wide structs,
// and its field count crashes g++ 12 (internal compiler error in check_noexcept_r) on a struct
// with a std::array of aggregates. The structured bindings (bindings.hpp) stop at 64 fields:
// each count is spelled out, and parsing them is most of what including hotswap costs.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/version.hpp>
#if BOOST_VERSION >= 108400
#include <boost/pfr/core_name.hpp>
#endif

#include "bindings.hpp"
#include "field_refs.hpp"

namespace hotswap::detail {

// ---- the field count: the most initializers that aggregate initialization accepts ----

struct any_field {
  std::size_t index;
  template <class U>
  operator U&&() const&& noexcept;  // never defined: only asked about
};

template <class T, std::size_t... I>
constexpr bool accepts_initializers(std::index_sequence<I...>) {
  return requires {
    T{any_field{I}...};
  };
}

/// Binary search: T accepts Low initializers and not High.
template <class T, std::size_t Low, std::size_t High>
constexpr std::size_t count_fields() {
  if constexpr (High - Low <= 1) {
    return Low;
  } else {
    constexpr std::size_t middle = (Low + High) / 2;
    if constexpr (accepts_initializers<T>(std::make_index_sequence<middle>{}))
      return count_fields<T, middle, High>();
    else
      return count_fields<T, Low, middle>();
  }
}

/// The number of fields of an aggregate; max_fields + 1 stands for "more than max_fields".
template <class T>
inline constexpr std::size_t field_count = count_fields<T, 0, max_fields + 2>();

/// References to the fields of `object`; `member<I>(fields(object))` is its I-th field.
template <class T>
constexpr auto fields(T& object) {
  return bind_members<field_count<std::remove_const_t<T>>>(object);
}

// Types are read through a const binding: a const reference binds even to a bit-field, so that
// the bit-field check can run and say what is wrong.
template <class T>
using field_types = typename decltype(fields(std::declval<const T&>()))::types;

template <class T, std::size_t I>
using field_type = std::remove_cvref_t<decltype(member<I>(fields(std::declval<const T&>())))>;

// ---- field names ----
//
// The address of each member of an object that is declared but never defined is a constant;
// the compiler spells it, member name included, in __PRETTY_FUNCTION__ when the addresses are
// a template argument.

template <class T>
struct fake_holder {
  const T hotswap_fake_member_;
};

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wundefined-var-template"
#pragma clang diagnostic ignored "-Wundefined-internal"  // a struct in an anonymous namespace
#endif
template <class T>
extern const fake_holder<T> fake_object;

template <class T>
constexpr auto member_addresses() {
  constexpr std::size_t n = field_count<T>;
  std::array<const void*, n> addresses{};
  if constexpr (n > 0) {
    auto refs = fields(fake_object<T>.hotswap_fake_member_);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((addresses[I] = &member<I>(refs)), ...);
    }
    (std::make_index_sequence<n>{});
  }
  return addresses;
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

template <auto Addresses>
constexpr std::string_view spelled_addresses() {
  return __PRETTY_FUNCTION__;
}

/// The I-th member name in a spelling of member addresses: g++ writes
/// `&fake_object<X>.holder<X>::hotswap_fake_member_.ns::X::name`, clang `&fake_object.hotswap_fake_member_.name`.
constexpr std::string_view nth_member_name(std::string_view spelled, std::size_t index) {
  constexpr std::string_view marker = "hotswap_fake_member_.";
  std::size_t at = 0;
  for (std::size_t i = 0; i <= index; ++i) {
    at = spelled.find(marker, at);
    if (at == std::string_view::npos) return {};
    at += marker.size();
  }
  // The path runs to the first `,` at depth 0 or the first closing bracket that was not opened
  // in it: type names in it may hold brackets and commas ({anonymous}, Pair<int, 2>).
  std::size_t end = at;
  for (int depth = 0; end < spelled.size(); ++end) {
    const char c = spelled[end];
    if (c == '<' || c == '(' || c == '{' || c == '[')
      ++depth;
    else if (c == '>' || c == ')' || c == '}' || c == ']') {
      if (depth-- == 0) break;
    } else if (c == ',' && depth == 0)
      break;
  }
  std::string_view path = spelled.substr(at, end - at);
  const std::size_t last = path.find_last_of(":.");
  return last == std::string_view::npos ? path : path.substr(last + 1);
}

// clang writes "..." for the elements of an array template argument past the tenth, so the
// addresses are spelled eight at a time.
inline constexpr std::size_t names_per_spelling = 8;

template <class T, std::size_t Chunk>
constexpr auto address_chunk() {
  constexpr auto all = member_addresses<T>();
  constexpr std::size_t first = Chunk * names_per_spelling;
  std::array<const void*, (all.size() - first < names_per_spelling ? all.size() - first : names_per_spelling)> chunk{};
  for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = all[first + i];
  return chunk;
}

template <class T>
constexpr auto compute_field_names() {
  std::array<std::string_view, field_count<T>> names{};
  [&]<std::size_t... Chunk>(std::index_sequence<Chunk...>) {
    auto read_chunk = [&]<std::size_t C>(std::integral_constant<std::size_t, C>) {
      constexpr std::string_view spelled = spelled_addresses<address_chunk<T, C>()>();
      for (std::size_t i = 0; i < address_chunk<T, C>().size(); ++i)
        names[C * names_per_spelling + i] = nth_member_name(spelled, i);
    };
    (read_chunk(std::integral_constant<std::size_t, Chunk>{}), ...);
    (void)read_chunk;  // a struct without fields has no chunk to read
  }
  (std::make_index_sequence<(field_count<T> + names_per_spelling - 1) / names_per_spelling>{});
  return names;
}

/// The names of T's fields, in declaration order: Boost.PFR's where the Boost in use reads them
/// (1.84 and later), our own otherwise; the tests check that the two agree.
template <class T>
inline constexpr std::array<std::string_view, field_count<T>> field_names =
#if BOOST_VERSION >= 108400
    boost::pfr::names_as_array<T>();
#else
    compute_field_names<T>();
#endif

/// The index of the field called `name`, or field_count<T> when there is none.
template <class T>
constexpr std::size_t field_index(std::string_view name) {
  std::size_t index = 0;
  while (index < field_count<T> && field_names<T>[index] != name) ++index;
  return index;
}

namespace self_test {
template <class, int>
struct probe {
  int first_field;
  char second;
};
static_assert(compute_field_names<probe<int, 2>>()[0] == "first_field" &&
                  compute_field_names<probe<int, 2>>()[1] == "second",
              "hotswap: this compiler spells template arguments in a way hotswap cannot read field names "
              "from (was -fno-pretty-templates given?); build without that option");
}  // namespace self_test

// ---- shape checks ----

/// The size T would have if every field were laid out whole, as an aggregate without
/// bit-fields is; a smaller T packs a bit-field (or an empty [[no_unique_address]] member).
template <class... Fields>
constexpr std::size_t plain_layout_size(type_list<Fields...>) {
  std::size_t offset = 0, align = 1;
  ((offset = (offset + alignof(Fields) - 1) / alignof(Fields) * alignof(Fields) + sizeof(Fields),
    align = alignof(Fields) > align ? alignof(Fields) : align),
   ...);
  return offset == 0 ? 1 : (offset + align - 1) / align * align;
}

}  // namespace hotswap::detail
