// Modules: implementation tables and schema histories loaded from shared libraries at run time,
// as Erlang's code server loads modules.
//
// A module is a shared library (made by hotswap_add_module in CMake) whose source says
//
//     HOTSWAP_MODULE("counter", CounterV2)
//
// and the program loads it, starts servers on it or switches running ones to it:
//
//     hotswap::code_server code;
//     auto v2 = code.load<Counter>("modules/counter_v2.so").value();
//     hotswap::sys::suspend(server).value();
//     hotswap::sys::change_code(server, v2, 1).value();   // from vsn 1
//     hotswap::sys::resume(server).value();
//     code.purge("counter");                              // unloads v1, or names the servers using it
//
// Everything a module says of itself (ABI, name, vsn, interface, schemas) is text in a section of
// the file, read and checked before the library is opened, with the seal its build wrote (a digest
// of its bytes, and a signature if the build has a key): a module that does not fit, is torn or
// is not signed by a trusted key never runs a line of its code. Each version is loaded from a
// private copy (rebuilding the file in place does not touch running code), and unmapped only once
// no server, table, state, timer or reply of its code is left.
#pragma once

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/abi/abi_description.hpp"
#include "detail/abi/module_descriptor.hpp"
#include "detail/common/spin_lock.hpp"
#include "detail/common/std_algorithm.hpp"
#include "detail/common/std_memory.hpp"
#include "detail/common/std_parts.hpp"
#include "detail/modules/code_server_access.hpp"
#include "detail/modules/copy_directory.hpp"
#include "detail/modules/leases.hpp"
#include "detail/modules/load_checks.hpp"
#include "detail/modules/module_file.hpp"
#include "detail/modules/module_note.hpp"
#include "detail/modules/module_seal.hpp"
#include "result.hpp"
#include "schemas.hpp"
#include "servers.hpp"
#include "supervisors.hpp"
#include "sys.hpp"

// -- making a module --

/// Makes this shared library a module named `name` (a string literal: letters, digits, '.', '_',
/// '-') holding `Implementation`. Once in a library made by hotswap_add_module.
#define HOTSWAP_MODULE(name, Implementation)                                                                          \
  static_assert(::hotswap::detail::building_module,                                                                   \
                "hotswap: HOTSWAP_MODULE makes a module: build this file into a library made by "                     \
                "hotswap_add_module() in CMake (or compile it with -DHOTSWAP_MODULE_BUILD -fvisibility=hidden, "      \
                "link it with hotswap_module.ld and seal it with hotswap-seal)");                                     \
  static_assert(sizeof(::hotswap::detail::module_name_check<name>) != 0); /* a bad name, reported once */             \
  [[gnu::used, gnu::retain, gnu::section("hotswap_module")]] constinit const auto hotswap_module_note =               \
      ::hotswap::detail::module_note<name, Implementation>;                                                           \
  [[gnu::used, gnu::retain,                                                                                           \
    gnu::section("hotswap_seal")]] constinit const ::hotswap::detail::module_seal hotswap_module_seal = {             \
      "hotswap seal 1", {}, {}, {}}; /* written by hotswap-seal after the link */                                     \
  extern "C"                                                                                                          \
      [[gnu::visibility("default")]] constinit const ::hotswap::detail::module_descriptor hotswap_module_descriptor = \
          ::hotswap::detail::make_descriptor<Implementation>(hotswap_module_note.data())

/// Exports `function` (no argument; returning void, or hotswap::result<void>: what it throws or
/// returns is its failure) as the step `name` (a string literal: letters, digits, '.', '_', '-')
/// of this module, which a release manifest's "apply" runs at a named point of the upgrade
/// (OTP's {apply, {M, F, A}}). Anywhere in the module's sources, once a step, beside HOTSWAP_MODULE.
#define HOTSWAP_MODULE_STEP(name, function) HOTSWAP_MODULE_STEP_AT(name, function, __LINE__)
#define HOTSWAP_MODULE_STEP_AT(name, function, line) HOTSWAP_MODULE_STEP_NAMED(name, function, line)
#define HOTSWAP_MODULE_STEP_NAMED(name, function, line)                                                         \
  static_assert(::hotswap::detail::building_module,                                                             \
                "hotswap: HOTSWAP_MODULE_STEP exports a step of a module: build this file into a library made " \
                "by hotswap_add_module() in CMake");                                                            \
  static_assert(sizeof(::hotswap::detail::step_name_check<name>) != 0);                                         \
  static_assert(sizeof(::hotswap::detail::step_function_check<function>) != 0);                                 \
  [[gnu::used, gnu::retain, gnu::section("hotswap_module")]] constinit const auto hotswap_step_note_##line =    \
      ::hotswap::detail::step_note<name>;                                                                       \
  [[gnu::used, gnu::retain,                                                                                     \
    gnu::section("hotswap_steps")]] constinit const ::hotswap::detail::module_step hotswap_step_##line = {      \
      name, &::hotswap::detail::run_step<function>}

namespace hotswap {

/// What a module must share with the program that loads it: the compiler and its version, the
/// standard library and its dual-ABI setting, hotswap's version and the digest of its headers,
/// the pointer size, exceptions and RTTI. A module built otherwise is refused (errc::abi_mismatch).
inline constexpr std::string_view abi_description = detail::abi_description;
inline constexpr std::uint64_t abi_fingerprint = detail::abi_fingerprint;

// -- loaded modules --

/// One loaded version of a module: what its note says, and the servers using it. Shared by the
/// code server, the servers on it (and whatever else holds its code); its library is unmapped
/// after the last of them lets go (at the code server's next load, purge, retire or collect).
class module_version : public std::enable_shared_from_this<module_version> {
 public:
  const std::string& name() const noexcept { return note_.name; }
  int vsn() const noexcept { return note_.vsn; }
  /// Which build of its vsn it is: 16 hex digits of the SHA-256 its seal holds (`hotswap-seal
  /// verify` prints all of it). A rebuild that changes anything has another.
  const std::string& build() const noexcept { return note_.build; }
  /// The file it was loaded from, and the private copy it runs from.
  const std::string& path() const noexcept { return path_; }
  const std::string& copy() const noexcept { return copy_; }
  const std::string& implementation() const noexcept { return note_.implementation; }
  const std::string& interface_name() const noexcept { return note_.interface_name; }
  std::uint64_t interface_fingerprint() const noexcept { return note_.interface; }
  /// The fingerprints of its interface's versions (hotswap::follows), the first first, its own last.
  const std::vector<std::uint64_t>& interface_lineage() const noexcept { return note_.interface_lineage; }
  /// Its interface's messages by slot: each one's slot, the vsn it dates from, fingerprint and name.
  using message_slot = detail::module_note_fields::message_slot;
  const std::vector<message_slot>& messages() const noexcept { return note_.messages; }
  /// Whether it implements `Interface`, or a later version of it.
  template <class Interface>
  bool implements() const noexcept {
    return Interface::vsn <= note_.interface_lineage.size() &&
           note_.interface_lineage[Interface::vsn - 1] == Interface::fingerprint;
  }
  /// The vsns its code_change starts from (its state_history), each with the state that vsn
  /// held, and whether this code makes that state from its own (`down`: a release going down to
  /// that vsn) or why not (`not_down`: the first mistake of the migration down).
  using earlier_state = detail::module_note_fields::earlier_state;
  const std::vector<earlier_state>& history() const noexcept { return note_.history; }
  /// The steps it exports (HOTSWAP_MODULE_STEP), by name, as its note lists them.
  const std::vector<std::string>& steps() const noexcept { return note_.steps; }
  /// Runs its step `name` on the calling thread, as a release's "apply" does: errc::step_failed
  /// with what the step threw or returned (errc::not_found: it exports none of that name).
  result<void> run_step(std::string_view name) const {
    for (std::size_t i = 0; i < step_count_; ++i)
      if (name == steps_[i].name) {
        detail::outcome ran;
        steps_[i].run(ran);
        if (!ran.failed) return {};
        return error{errc::step_failed, ran.thrown.empty() ? ran.what : ran.what + " (" + ran.thrown + " thrown)"};
      }
    return error{errc::not_found,
                 note_.name + " vsn " + std::to_string(note_.vsn) + " exports no step " + std::string(name)};
  }

  /// The servers using this version now: running its table, or holding a state it made that
  /// is not plain data.
  template <class Lease = detail::lease<module_version>>
  std::vector<any_server> servers() const {
    std::vector<any_server> using_it;
    const detail::spin_guard hold(lock_);
    for (const Lease* held : leases_) {
      detail::server_core* server = held->server;  // its table's lease and its state's may both be here
      const auto seen = [&](const any_server& listed) { return listed.core() == server; };
      if (server && std::none_of(using_it.begin(), using_it.end(), seen) &&
          server->alive.load(std::memory_order_acquire) && detail::try_acquire(*server))
        using_it.emplace_back(server);
    }
    return using_it;
  }

  module_version(const module_version&) = delete;
  module_version& operator=(const module_version&) = delete;

  // Made by the code server only: `library` closes the library when the last holder lets go.
  module_version(detail::module_note_fields note, std::string path, std::string copy, const implementation_table* table,
                 std::shared_ptr<void> library, const detail::module_step* steps = nullptr, std::size_t step_count = 0)
      : note_(std::move(note)),
        path_(std::move(path)),
        copy_(std::move(copy)),
        table_(table),
        library_(std::move(library)),
        steps_(steps),
        step_count_(step_count) {}

 private:
  template <class>
  friend struct detail::lease;
  template <class>
  friend struct detail::module_access;
  detail::module_note_fields note_;
  std::string path_, copy_;
  const implementation_table* table_;  // reached only with a lease (detail::module_access)
  std::shared_ptr<void> library_;
  const detail::module_step* steps_;  // in the library, as its note lists them
  std::size_t step_count_;
  mutable detail::spin_lock lock_;
  mutable std::vector<detail::lease<module_version>*> leases_;
};

using module_ptr = std::shared_ptr<const module_version>;

/// A module, as code_server::all_loaded lists it.
struct loaded_module {
  std::string name;
  module_ptr current, old;  ///< either may be null
};

// -- servers on modules --

/// Starts a server running a module's table, passing `argument` to its init. Fails if the
/// module implements another interface or its init takes another argument.
template <class Interface, class Argument>
requires detail::is_interface<Interface> result<server_ref<Interface>> start(const module_ptr& code,
                                                                             const Argument& argument,
                                                                             start_options options = {}) {
  auto leased = detail::lease_to_start<Argument>(code);
  if (!leased) return leased.error();
  return detail::start_as<Interface>(*leased->table, &argument, options.name, options.own_thread,
                                     std::move(leased->lease), &detail::bind_lease<module_version>);
}

/// Starts a server running a module's table whose init takes no argument.
template <class Interface>
requires detail::is_interface<Interface> result<server_ref<Interface>> start(const module_ptr& code,
                                                                             start_options options = {}) {
  auto leased = detail::lease_to_start<void>(code);
  if (!leased) return leased.error();
  return detail::start_as<Interface>(*leased->table, nullptr, options.name, options.own_thread,
                                     std::move(leased->lease), &detail::bind_lease<module_version>);
}

/// A supervisor's child running a module's code (OTP's child spec of a worker whose module
/// releases upgrade): each start, the first and every restart, takes the version of `module`
/// current in `code` then, so a child restarted after an upgrade runs the new code. Its start
/// fails, as an init that throws does, while the module is not loaded. `code` (a code server)
/// must outlive the supervisor.
template <class Interface, class CodeServer>
requires detail::is_interface<Interface> child_spec module_child(std::string id, CodeServer& code, std::string module,
                                                                 start_options options = {},
                                                                 restart restart_type = restart::permanent) {
  return {std::move(id),
          [&code, module = std::move(module), options]() -> result<any_server> {
            const module_ptr current = code.current(module);
            if (!current) return error{errc::no_module, "module " + module + " is not loaded"};
            auto started = start<Interface>(current, options);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

/// The same, passing `argument` (kept in the spec) to its init at each start.
template <class Interface, class CodeServer, class Argument>
requires(detail::is_interface<Interface> && !std::is_same_v<Argument, start_options>) child_spec
    module_child(std::string id, CodeServer& code, std::string module, Argument argument, start_options options = {},
                 restart restart_type = restart::permanent) {
  return {std::move(id),
          [&code, module = std::move(module), argument = std::move(argument), options]() -> result<any_server> {
            const module_ptr current = code.current(module);
            if (!current) return error{errc::no_module, "module " + module + " is not loaded"};
            auto started = start<Interface>(current, argument, options);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

namespace sys {
/// change_code to a loaded module: the server then keeps that version loaded.
result<void> change_code(const server_handle auto& server, const module_ptr& code, int old_vsn,
                         std::chrono::nanoseconds timeout = default_timeout) {
  auto leased = detail::lease_to_server(code, server.core());
  if (!leased) return leased.error();
  return detail::change_code_request(server, *leased->table, old_vsn, timeout, std::move(leased->lease), {}, {});
}

/// change_code to a loaded module, passing `extra` to its code_change (a duration is the timeout).
template <class Extra>
requires(!detail::is_instance_of<std::chrono::duration, Extra>) result<void> change_code(
    const server_handle auto& server, const module_ptr& code, int old_vsn, const Extra& extra,
    std::chrono::nanoseconds timeout = default_timeout) {
  auto leased = detail::lease_to_server(code, server.core());
  if (!leased) return leased.error();
  auto [reference, kept] = detail::keep_extra(extra);
  return detail::change_code_request(server, *leased->table, old_vsn, timeout, std::move(leased->lease), reference,
                                     std::move(kept));
}
}  // namespace sys

// -- the code server --

/// soft: refuse while servers use the old version; force: stop them first.
enum class purge_mode { soft, force };

/// What a purge did.
struct purge_report {
  int vsn = 0;                      ///< the version purged (0: there was no old version)
  std::size_t servers_stopped = 0;  ///< by a forced purge
  bool unmapped = false;            ///< its library is gone from the process
  std::string note;                 ///< why it is still mapped, when it is
};

/// What a module file says it is (code_server::check).
struct module_info {
  std::string name;
  int vsn;
  std::string build;  ///< as module_version::build says
  std::string implementation, interface_name;
  std::uint64_t interface_fingerprint;
  std::vector<int> from_vsns;  ///< the vsns its code_change starts from (its state_history)
};

/// How a code server is set up.
struct code_server_options {
  /// Where private copies of the libraries go (made, mode 0700); empty: a new directory under
  /// $TMPDIR or /tmp, named for this process (`hotswap-modules-<pid>-...`), where the code
  /// server, as it starts, removes those of this user's processes that died without removing
  /// theirs. It must allow executable mappings (not mounted noexec).
  std::string directory{};
  /// A larger file is refused at once (errc::too_large), before a byte of it is read: a module
  /// is kilobytes to megabytes, and a load holds the code server.
  std::size_t largest_module = std::size_t{64} << 20;
  /// Ed25519 public keys (PEM, as `hotswap-seal keygen` or `openssl pkey -pubout` write them);
  /// given any, a module not signed by one of them is refused (errc::untrusted). None: a module
  /// need only be sealed (its bytes as its build wrote them).
  std::vector<std::string> trusted_keys{};
  /// A development code server (the edit, rebuild, reload loop: hotswap::module_watch) also
  /// takes another build of the current vsn, which a rebuild keeps; production's rule, a newer
  /// vsn, is otherwise the same. The build already loaded is still refused (errc::not_newer).
  bool development = false;
};

/// Loads modules, keeping a current and an old version of each, as Erlang's code server. Its
/// operations run one at a time, in the order they are called. (A template only so that a
/// program compiles it where it uses it: use hotswap::code_server.)
template <class = void>
class basic_code_server {
 public:
  explicit basic_code_server(code_server_options options = {});
  basic_code_server(const basic_code_server&) = delete;
  basic_code_server& operator=(const basic_code_server&) = delete;
  /// Closes what nothing uses; libraries still in use stay mapped, but no copy stays on disk
  /// (nor the directory it made for them).
  ~basic_code_server();

  /// Loads the module in `path`, checking it against the program (ABI, schemas) and against
  /// its loaded versions (interface, a newer vsn), and makes it the current version; the
  /// current one becomes old (an old one nothing uses any more is purged first). On any failure
  /// (errc::no_file, unsafe_path, not_a_library, too_large, truncated, no_descriptor, unsealed,
  /// torn, untrusted, abi_mismatch, wrong_interface, schema_conflict, not_newer, not_purged,
  /// load_failed, initializer_failed) the code server and every server are left as they were.
  result<module_ptr> load(const std::string& path) { return load(path, 0, {}); }

  /// The same, checking too that the module implements `Interface` as this program knows it.
  template <class Interface>
  result<module_ptr> load(const std::string& path);

  /// What the module in `path` is, after every check a load makes before opening the library
  /// (the file, its seal, its note against this program and the loaded versions, a newer vsn);
  /// with load's errors. Nothing is loaded, copied or changed: what a release checks before
  /// anything moves.
  result<module_info> check(const std::string& path);

  /// The current and old versions of a module (null if none).
  module_ptr current(std::string_view name) const { return find(name, &entry::current); }
  module_ptr old(std::string_view name) const { return find(name, &entry::old); }

  /// Every module loaded, in the order first loaded, with its current and old versions (Erlang's
  /// code:all_loaded()): what observers list.
  std::vector<loaded_module> all_loaded() const;

  /// Unloads the old version of `name`. Soft: fails with errc::not_purged, naming the servers
  /// still using it, if any does. Force: stops them first, each within `timeout`; if one cannot
  /// be stopped (a handler that does not return), fails with errc::not_purged naming it, and
  /// keeps the version (its stop may take effect later; purge again then). The library is
  /// unmapped once nothing holds its code (a handle to a stopped server, a pending timer or reply
  /// may, for a while).
  result<purge_report> purge(std::string_view name, purge_mode mode = purge_mode::soft,
                             std::chrono::nanoseconds timeout = default_timeout);

  /// Makes the current version of `name` old, as Erlang's code:delete/1: the servers on it run
  /// on, purge can then unload it, and any vsn may be loaded next. An old version nothing uses is
  /// purged first; one that servers still use makes this fail with errc::not_purged.
  result<void> retire(std::string_view name);

  /// Unmaps the libraries nothing holds any more; how many.
  std::size_t collect();

  /// Whether it takes another build of the current vsn (code_server_options::development).
  bool development() const noexcept { return development_; }

  /// Where the private copies go (empty until the first load, when none was given).
  std::string directory() const;

 private:
  template <class>
  friend struct detail::code_server_access;  // the release handler's: read_note, load (older), undo_load

  struct entry {
    std::string name;
    module_ptr current, old;
  };

  module_ptr find(std::string_view name, module_ptr entry::*which) const;
  entry* find_entry(std::string_view name);

  /// The directory of the copies, made and opened on first use.
  result<void> open_directory(const std::string& path);

  result<module_ptr> load(const std::string& path, std::uint64_t interface, std::string_view interface_name,
                          bool older = false);

  /// What the file says, before any of its code runs: the file (its bytes into `bytes`, its
  /// note's text into `text`), its seal, its note.
  result<detail::module_note_fields> read_note(const std::string& path, std::string& bytes, std::string_view& text);

  /// The same, and the note checked against the program and the loaded versions.
  result<detail::module_note_fields> check_file(const std::string& path, std::uint64_t interface,
                                                std::string_view interface_name, std::string& bytes,
                                                std::string_view& text, bool older = false);

  /// Undoes the load that made `version` current: the version before it is current again (a
  /// release whose load failed part way). Its servers, if any, must have let go.
  void undo_load(module_ptr version);

  result<module_ptr> load_checked(const std::string& path, std::uint64_t interface, std::string_view interface_name,
                                  bool older);

  detail::spin_lock operation_;     // one load, purge, retire or collect at a time
  mutable detail::spin_lock lock_;  // the table below, briefly
  std::string directory_;
  bool made_directory_ = false;
  std::size_t largest_module_;
  bool development_;
  std::vector<detail::evp_key> trusted_;
  std::string bad_key_;  // why trusted_ is unusable (a key that did not parse), if it is
  std::vector<entry> modules_;
  std::shared_ptr<detail::copy_directory> directory_fd_ = std::make_shared<detail::copy_directory>();
  std::shared_ptr<detail::library_closer<>> closer_ = std::make_shared<detail::library_closer<>>(directory_fd_);
};

using code_server = basic_code_server<>;

}  // namespace hotswap

#include "impl/modules.hpp"
