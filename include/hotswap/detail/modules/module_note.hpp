// What HOTSWAP_MODULE puts in a module: its note (one fact a line: ABI, name, vsn, implementation,
// interface, its state, the argument its init takes if any, the vsns it changes code from, and
// every schema version its states and extra hold), checked by the program before any of the
// module's code runs, and its descriptor. Cost: one visit per schema version reached from the
// state, its history and its extra; a schema reached twice is written once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../result.hpp"
#include "../abi/abi_description.hpp"
#include "../abi/module_descriptor.hpp"
#include "../common/fixed_string.hpp"
#include "../common/hash.hpp"
#include "../common/sinks.hpp"
#include "../common/type_name.hpp"
#include "../common/verdict.hpp"
#include "../reflect/fields.hpp"
#include "../schemas/describe.hpp"
#include "../schemas/field_kinds.hpp"
#include "../schemas/version_info.hpp"
#include "../servers/implementation_checks.hpp"
#include "../servers/interface_versions.hpp"
#include "../servers/table_of.hpp"
#include "module_name.hpp"

namespace hotswap::errors {
template <class Name>
struct module_name_is_invalid {
  static_assert(reported<module_name_is_invalid>,
                "hotswap: a module's name names its files: use letters, digits, '.', '_' and '-' only, not first '.'");
};

template <class Name>
struct step_name_is_invalid {
  static_assert(reported<step_name_is_invalid>,
                "hotswap: a step's name is what a release manifest's \"apply\" names: use letters, digits, '.', '_' "
                "and '-' only, not first '.', '_' or '-', at most 64");
};
template <class Function>
struct step_is_not_a_function_of_no_argument {
  static_assert(reported<step_is_not_a_function_of_no_argument>,
                "hotswap: HOTSWAP_MODULE_STEP takes a function of no argument returning void (it may throw) or "
                "hotswap::result<void>");
};

}  // namespace hotswap::errors

namespace hotswap::detail {

template <class T, class Visit>
constexpr void visit_schemas_in(Visit& visit);

/// Calls `visit(std::type_identity<V>{})` for every version V of `Schema`, then for the schemas
/// their fields hold.
template <class Schema, class Visit>
constexpr void visit_schema_versions(Visit& visit) {
  [&]<int... Offset>(std::integer_sequence<int, Offset...>) {
    auto one = [&]<class V>(std::type_identity<V> version) {
      visit(version);
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (visit_schemas_in<field_type<V, I>>(visit), ...);
      }
      (std::make_index_sequence<field_count<V>>{});
    };
    (one(std::type_identity<typename Schema::template type_of<Schema::oldest_vsn + Offset>>{}), ...);
  }
  (std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
}

/// The schemas a type holds: its own if it is a schema version, those of its elements if it is
/// a standard container.
template <class T, class Visit>
constexpr void visit_schemas_in(Visit& visit) {
  if constexpr (field_kind_of<T> == field_kind::version)
    visit_schema_versions<schema_of<T>>(visit);
  else
    [&]<class... Held>(type_list<Held...>) { (visit_schemas_in<Held>(visit), ...); }(held_types<T>{});
}

/// The schema history a module carries: the schemas its state, the states it upgrades from and
/// its extra hold (each schema with every version it lists). A schema may come more than once.
template <class Implementation, class Visit>
constexpr void visit_module_schemas(Visit& visit) {
  visit_schemas_in<typename Implementation::state>(visit);
  [&]<class... Versions>(state_history<Versions...>) {
    (visit_schemas_in<typename Versions::type>(visit), ...);
  }(history_of<Implementation>{});
  visit_schemas_in<extra_of<Implementation>>(visit);
}

/// The text of a module's note: one fact a line, readable with `readelf -p hotswap_module`.
template <fixed_string Name, class Implementation, class Sink>
constexpr void put_module_note(Sink& sink) {
  using interface = typename Implementation::interface;
  sink.put("hotswap module 1\nabi ");
  put_hex(sink, abi_fingerprint);
  sink.put(" ");
  sink.put(abi_description);
  sink.put("\nname ");
  sink.put(Name.view());
  sink.put("\nvsn ");
  put_number(sink, static_cast<std::size_t>(Implementation::vsn));
  sink.put("\nimplementation ");
  sink.put(type_spelling<Implementation>());
  sink.put("\ninterface ");
  put_hex(sink, interface::fingerprint);
  sink.put(" ");
  sink.put(interface::name);
  for (std::size_t i = 0; i < interface::lineage.size(); ++i) {  // interface-version 1 <fingerprint>
    sink.put("\ninterface-version ");
    put_number(sink, i + 1);
    sink.put(" ");
    put_hex(sink, interface::lineage[i]);
  }
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto message = [&]<std::size_t Index>(std::integral_constant<std::size_t, Index>) {
      using Slot = slot_at<interface, Index>;  // message <slot> <since> <fingerprint> <name>
      sink.put("\nmessage ");
      put_number(sink, Index);
      sink.put(" ");
      put_number(sink, static_cast<std::size_t>(Slot::since));
      sink.put(" ");
      put_hex(sink, slot_hash<typename Slot::kind>(fnv1a_start));
      sink.put(" ");
      sink.put(slot_name<typename Slot::kind>());
    };
    (message(std::integral_constant<std::size_t, I>{}), ...);
  }
  (std::make_index_sequence<interface::size>{});
  sink.put("\nstate ");  // what a release checks a running server against before anything moves
  put_hex(sink, value_fingerprint<typename Implementation::state>);
  sink.put("\n");
  if constexpr (init_takes_argument<Implementation>) {  // what a release that starts a server checks
    sink.put("init ");
    sink.put(argument_spelling<init_argument<Implementation>>);
    sink.put("\n");
  }
  [&]<class... Versions>(state_history<Versions...>) {
    auto from = [&]<class Earlier>(std::type_identity<Earlier>) {
      using Old = typename Earlier::type;
      sink.put("from ");  // from 1 <fingerprint of vsn 1's state>
      put_number(sink, static_cast<std::size_t>(Earlier::vsn));
      sink.put(" ");
      put_hex(sink, value_fingerprint<Old>);
      if constexpr (fine<down_check<Implementation, Old>>) {
        sink.put("\ndown ");  // down 1: this code makes vsn 1's state (a release going down)
        put_number(sink, static_cast<std::size_t>(Earlier::vsn));
      } else {
        sink.put("\nno-down ");  // no-down 1 <the first mistake of the migration down>
        put_number(sink, static_cast<std::size_t>(Earlier::vsn));
        sink.put(" ");
        sink.put(type_spelling<error_of<down_check<Implementation, Old>>>());
      }
      sink.put("\n");
    };
    (void)from;  // an empty history
    (from(std::type_identity<Versions>{}), ...);
  }(history_of<Implementation>{});
  std::array<std::uint64_t, 256> seen{};  // a schema reached twice is written once
  std::size_t seen_count = 0;
  auto line = [&]<class V>(std::type_identity<V>) {  // schema Account 2 <fingerprint> <description>
    for (std::size_t i = 0; i < seen_count; ++i)
      if (seen[i] == fnv1a(description<V>)) return;
    if (seen_count < seen.size()) seen[seen_count++] = fnv1a(description<V>);
    sink.put("schema ");
    sink.put(schema_of<V>::name);
    sink.put(" ");
    put_number(sink, static_cast<std::size_t>(version_number<V>));
    sink.put(" ");
    put_hex(sink, fnv1a(description<V>));
    sink.put(" ");  // the fields, so that a conflict can say which differ
    sink.put(description<V>);
    sink.put("\n");
  };
  visit_module_schemas<Implementation>(line);
}

template <fixed_string Name, class Implementation>
constexpr auto make_module_note() {
  constexpr std::size_t size = [] {
    length_sink counter;
    put_module_note<Name, Implementation>(counter);
    return counter.size;
  }();
  chars_sink<size + 1> text;  // and a NUL
  put_module_note<Name, Implementation>(text);
  return text.chars;
}

/// Stamped into the module's `hotswap_module` section by HOTSWAP_MODULE.
template <fixed_string Name, class Implementation>
inline constexpr auto module_note = [] {
  if constexpr (fine<implementation_check<Implementation>>)
    return make_module_note<Name, Implementation>();
  else
    return (void)checked_table<Implementation>::table, std::array<char, 1>{};  // reports the implementation's mistake
}();

template <fixed_string Name>
using module_name_check = std::conditional_t<valid_module_name(Name.view()), no_error,
                                             errors::module_name_is_invalid<spelled<errors::schema_named, Name>>>;

template <class Implementation>
void describe_schemas(std::vector<version_info>& out) {
  auto add = [&]<class V>(std::type_identity<V>) { out.push_back(describe_version<V>()); };
  visit_module_schemas<Implementation>(add);
}

template <class Implementation>
inline constexpr module_descriptor make_descriptor(const char* note) {
  return {descriptor_magic,
          note,
          &checked_table<Implementation>::table,
          &describe_schemas<Implementation>,
          &attach_module<Implementation>,
          &module_steps<Implementation>};
}

// -- steps (HOTSWAP_MODULE_STEP) --

/// A step's line of the note, a piece of the hotswap_module section of its own (NUL-ended, as
/// the note is): `step warm_cache`. The note's reader reads every piece of the section.
template <fixed_string Name>
inline constexpr auto step_note = [] {
  constexpr std::string_view head = "step ";
  std::array<char, head.size() + Name.view().size() + 2> text{};  // a newline and a NUL
  for (std::size_t i = 0; i < head.size(); ++i) text[i] = head[i];
  for (std::size_t i = 0; i < Name.view().size(); ++i) text[head.size() + i] = Name.view()[i];
  text[text.size() - 2] = '\n';
  return text;
}();

template <fixed_string Name>
using step_name_check = std::conditional_t<valid_step_name(Name.view()), no_error,
                                           errors::step_name_is_invalid<spelled<errors::schema_named, Name>>>;

/// Whether `F` is what HOTSWAP_MODULE_STEP takes: a function of no argument returning void or
/// hotswap::result<void>.
template <class F>
constexpr bool is_step_function() {
  if constexpr (!std::is_invocable_v<F>)
    return false;
  else
    return std::is_void_v<std::invoke_result_t<F>> || std::is_same_v<std::invoke_result_t<F>, result<void>>;
}

template <auto Function>
using step_function_check = std::conditional_t<is_step_function<decltype(Function)>(), no_error,
                                               errors::step_is_not_a_function_of_no_argument<decltype(Function)>>;

/// Runs a step, in the module: what it throws, or the error it returns, is said in `result`.
template <auto Function>
void run_step(outcome& result) noexcept {
  if constexpr (is_step_function<decltype(Function)>())  // (else step_function_check reports it)
    report_failure(result, [&] {
      if constexpr (std::is_void_v<std::invoke_result_t<decltype(Function)>>) {
        Function();
      } else if (const hotswap::result<void> done = Function(); !done) {
        result = {true, done.error().what.empty() ? std::string(to_string(done.error().code)) : done.error().what};
      }
    });
}

}  // namespace hotswap::detail
