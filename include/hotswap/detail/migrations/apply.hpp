// Migrating a value, once checks.hpp found nothing: step by step between versions, field by field
// within a step, element by element within a container. A value given as an rvalue is moved
// from; one given as a const (or any lvalue) is read, each part copied as it is used: a server's
// old state, kept as it is for a rollback, is so migrated without a whole copy made first.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "../reflect/fields.hpp"
#include "../schemas/field_kinds.hpp"
#include "context.hpp"
#include "routes.hpp"
#include "step_plan.hpp"

namespace hotswap::detail {

template <class To, class Source, class Context>
To migrate_value(Source&& from, const Context& context);

// -- moved or read --

/// Whether a migration given `Source` (a forwarding reference's type) reads it, not moves from it.
template <class Source>
inline constexpr bool reads_only =
    std::is_lvalue_reference_v<Source> || std::is_const_v<std::remove_reference_t<Source>>;

/// A part of the source, passed on as the source was given: moved out, or as a const lvalue.
template <class Source, class Part>
constexpr decltype(auto) part_of(Part& part) noexcept {
  if constexpr (reads_only<Source>)
    return std::as_const(part);
  else
    return std::move(part);
}

// -- one step, one version to the next --

template <class Field, class Value>
Field implicitly(Value&& value) {
  return std::forward<Value>(value);
}

template <class From, class To, class Source, class Context>
To run_step(Source&& from, const Context& context) {
  using Step = step<From, To>;
  if constexpr (requires(From && whole) { Step::migrate(std::move(whole), context); }) {
    if constexpr (reads_only<Source>)
      return Step::migrate(From(from), context);  // the step's own function takes its value whole
    else
      return Step::migrate(std::move(from), context);
  } else {
    constexpr auto plan = step_plan<From, To>;
    constexpr auto declared = rules_of<Step>();
    auto old_fields = fields(from);
    auto declared_function = [&]<rule_kind Kind, std::size_t New>() -> const auto& {
      return static_cast<const declared_rule<From, To, Kind, New>&>(declared).function;
    };

    // Initializers read the whole old value, so they all run before anything is moved out of it.
    constexpr auto init_fields = [&] {
      std::array<std::size_t, field_count<To>> indices{};
      std::size_t n = 0;
      for (std::size_t j = 0; j < plan.size(); ++j)
        if (plan[j].kind == source_kind::init) indices[n++] = j;
      return std::pair{indices, n};
    }();
    auto initialized = [&]<std::size_t... K>(std::index_sequence<K...>) {
      return std::tuple<field_type<To, init_fields.first[K]>...>{implicitly<field_type<To, init_fields.first[K]>>(
          call_declared(declared_function.template operator()<rule_kind::init, init_fields.first[K]>(),
                        std::as_const(from), context))...};
    }
    (std::make_index_sequence<init_fields.second>{});

    // Each field's initializer: a moved field is moved straight into place, as a hand-written
    // `To{std::move(old.name), ...}` does.
    auto field_value = [&]<std::size_t New>(std::integral_constant<std::size_t, New>) -> decltype(auto) {
      constexpr field_source source = plan[New];
      using Field = field_type<To, New>;
      if constexpr (source.kind == source_kind::init) {
        constexpr std::size_t position = [&] {
          std::size_t k = 0;
          while (init_fields.first[k] != New) ++k;
          return k;
        }();
        return std::move(std::get<position>(initialized));
      } else if constexpr (source.kind == source_kind::convert) {
        const auto& convert = declared_function.template operator()<rule_kind::convert, New>();
        using Old = field_type<From, source.old_index>;
        if constexpr (reads_only<Source>)  // a copy of its own: the function may take it by rvalue reference
          return implicitly<Field>(call_declared(convert, Old(member<source.old_index>(old_fields)), context));
        else
          return implicitly<Field>(call_declared(convert, std::move(member<source.old_index>(old_fields)), context));
      } else {
        static_assert(source.kind == source_kind::moved);
        if constexpr (std::is_same_v<field_type<From, source.old_index>, Field>)
          return part_of<Source>(member<source.old_index>(old_fields));
        else
          return migrate_value<Field>(part_of<Source>(member<source.old_index>(old_fields)), context);
      }
    };
    if constexpr (adds_before_the_end<plan>()) {
      // A field added before others: aggregate initialization cannot skip it, so the struct is
      // built with every default member initializer, and the other fields are assigned.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
// g++ 12 at -O2/-O3 believes a std::string in `made` may be destroyed uninitialized on the path
// where building it throws (valgrind finds nothing; plain code building the same struct does not
// warn).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
      To made{};
      auto made_fields = fields(made);
      [&]<std::size_t... J>(std::index_sequence<J...>) {
        auto assign = [&]<std::size_t New>(std::integral_constant<std::size_t, New> field) {
          if constexpr (plan[New].kind != source_kind::added) member<New>(made_fields) = field_value(field);
        };
        (assign(std::integral_constant<std::size_t, J>{}), ...);
      }
      (std::make_index_sequence<plan.size()>{});
      return made;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    } else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // trailing added fields: on purpose
      return [&]<std::size_t... J>(std::index_sequence<J...>) {
        return To{field_value(std::integral_constant<std::size_t, J>{})...};
      }
      (std::make_index_sequence<initialized_prefix<plan>()>{});
#pragma GCC diagnostic pop
    }
  }
}

/// Migrates a schema version to another version of the same schema, one step at a time (what
/// the first step made is moved from by the next).
template <class To, class Source, class Context>
To migrate_versions(Source&& from, const Context& context) {
  using From = std::remove_cvref_t<Source>;
  constexpr int from_vsn = version_number<From>, to_vsn = version_number<To>;
  using Next = typename schema_of<From>::template type_of<(from_vsn < to_vsn ? from_vsn + 1 : from_vsn - 1)>;
  if constexpr (std::is_same_v<Next, To>)
    return run_step<From, To>(std::forward<Source>(from), context);  // built in place, not moved once more
  else
    return migrate_versions<To>(run_step<From, Next>(std::forward<Source>(from), context), context);
}

/// Converts to `To` by calling `make`, so that a container building a `To` from it in place
/// builds it straight from make's result, with no temporary moved in.
template <class To, class Make>
struct built_in_place {
  Make make;
  operator To() && { return make(); }
};
template <class To, class Make>
built_in_place<To, Make> in_place(Make make) {
  return {std::move(make)};
}

template <class To, class Source, class Context>
To migrate_value(Source&& from, const Context& context) {
  constexpr route way = route_of<std::remove_cvref_t<Source>, To>();
  if constexpr (way == route::same) {
    return part_of<Source>(from);
  } else if constexpr (way == route::versions) {
    return migrate_versions<To>(std::forward<Source>(from), context);
  } else if constexpr (way == route::widening) {
    return static_cast<To>(from);
  } else if constexpr (way == route::sequence) {
    To out;
    out.reserve(from.size());
    for (auto& element : from)
      out.emplace_back(in_place<typename To::value_type>(
          [&] { return migrate_value<typename To::value_type>(part_of<Source>(element), context); }));
    return out;
  } else if constexpr (way == route::map && ordered_map<To>) {
    To out;
    for (auto& entry : from)  // not a structured binding: clang 14 cannot capture one
      out.emplace_hint(out.end(), entry.first, in_place<typename To::mapped_type>([&] {
                         return migrate_value<typename To::mapped_type>(part_of<Source>(entry.second),
                                                                        context.with_key(entry.first));
                       }));
    return out;
  } else if constexpr (way == route::map) {
    To out;
    out.reserve(from.size());
    for (auto& entry : from)
      out.emplace(entry.first, in_place<typename To::mapped_type>([&] {
                    return migrate_value<typename To::mapped_type>(part_of<Source>(entry.second),
                                                                   context.with_key(entry.first));
                  }));
    return out;
  } else if constexpr (way == route::optional) {
    if (!from) return To{};
    return To{migrate_value<typename To::value_type>(part_of<Source>(*from), context)};
  } else if constexpr (way == route::into_optional) {
    return To{migrate_value<typename To::value_type>(std::forward<Source>(from), context)};
  } else {
    static_assert(way == route::array);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return To{migrate_value<typename To::value_type>(part_of<Source>(from[I]), context)...};
    }
    (std::make_index_sequence<std::tuple_size_v<To>>{});
  }
}

/// Migrates a whole value: the context of the top level, outside any map.
template <class To, class From, class Extra, class Key = no_key>
To migrate_top(From&& value, const Extra& extra) {
  static constexpr Key top_level{};
  return migrate_value<To>(std::forward<From>(value), context<Extra, Key>{extra, top_level});
}

}  // namespace hotswap::detail
