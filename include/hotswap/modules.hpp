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

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "detail/headers_digest.hpp"
#include "detail/module_file.hpp"
#include "detail/module_seal.hpp"
#include "schemas.hpp"
#include "servers.hpp"
#include "sys.hpp"
#include "version.hpp"

// ---- the ABI a module must share with the program ----

#define HOTSWAP_DETAIL_TEXT(x) #x
#define HOTSWAP_DETAIL_STRING(x) HOTSWAP_DETAIL_TEXT(x)

#if defined(__clang__)
#define HOTSWAP_DETAIL_COMPILER                                                                         \
  "clang " HOTSWAP_DETAIL_STRING(__clang_major__) "." HOTSWAP_DETAIL_STRING(__clang_minor__) "." \
      HOTSWAP_DETAIL_STRING(__clang_patchlevel__)
#elif defined(__GNUC__)
#define HOTSWAP_DETAIL_COMPILER \
  "g++ " HOTSWAP_DETAIL_STRING(__GNUC__) "." HOTSWAP_DETAIL_STRING(__GNUC_MINOR__) "." HOTSWAP_DETAIL_STRING(__GNUC_PATCHLEVEL__)
#else
#define HOTSWAP_DETAIL_COMPILER "unknown compiler"
#endif

#if defined(__GLIBCXX__)
#define HOTSWAP_DETAIL_STDLIB                                                                      \
  "libstdc++ " HOTSWAP_DETAIL_STRING(__GLIBCXX__) ", cxx11 abi " HOTSWAP_DETAIL_STRING(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define HOTSWAP_DETAIL_STDLIB "libc++ " HOTSWAP_DETAIL_STRING(_LIBCPP_VERSION) ", abi " HOTSWAP_DETAIL_STRING(_LIBCPP_ABI_VERSION)
#else
#define HOTSWAP_DETAIL_STDLIB "unknown standard library"
#endif

#if defined(_GLIBCXX_DEBUG)  // debug containers have other layouts
#define HOTSWAP_DETAIL_DEBUG_CONTAINERS ", debug containers"
#else
#define HOTSWAP_DETAIL_DEBUG_CONTAINERS ""
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define HOTSWAP_DETAIL_EXCEPTIONS "exceptions on"
#else
#define HOTSWAP_DETAIL_EXCEPTIONS "exceptions off"
#endif

#if defined(__GXX_RTTI) || defined(__cpp_rtti)
#define HOTSWAP_DETAIL_RTTI "rtti on"
#else
#define HOTSWAP_DETAIL_RTTI "rtti off"
#endif

namespace hotswap {

/// What a module must share with the program that loads it: the compiler and its version, the
/// standard library and its dual-ABI setting, hotswap's version and the digest of its headers
/// (the layouts of what program and module share, and the code that works on them), the pointer
/// size, exceptions and RTTI. (Types cross between them as they are, so any of these changing is
/// a refusal.)
inline constexpr std::string_view abi_description =
    HOTSWAP_DETAIL_COMPILER "; " HOTSWAP_DETAIL_STDLIB HOTSWAP_DETAIL_DEBUG_CONTAINERS
    "; hotswap " HOTSWAP_VERSION_STRING " headers " HOTSWAP_DETAIL_HEADERS_DIGEST "; "
    HOTSWAP_DETAIL_STRING(__SIZEOF_POINTER__) "-byte pointers; " HOTSWAP_DETAIL_EXCEPTIONS "; " HOTSWAP_DETAIL_RTTI;
inline constexpr std::uint64_t abi_fingerprint = detail::fnv1a(abi_description);

// ---- what a module says of itself ----

namespace detail {

template <class Sink>
constexpr void put_hex(Sink& sink, std::uint64_t value) {
  constexpr std::string_view digits = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) sink.put(digits.substr((value >> shift) & 0xF, 1));
}

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
      }(std::make_index_sequence<field_count<V>>{});
    };
    (one(std::type_identity<typename Schema::template type_of<Schema::oldest_vsn + Offset>>{}), ...);
  }(std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
}

/// The schemas a type holds: its own if it is a schema version, those of its elements if it is
/// a standard container.
template <class T, class Visit>
constexpr void visit_schemas_in(Visit& visit) {
  if constexpr (versioned<T>) {
    visit_schema_versions<schema_of<T>>(visit);
  } else if constexpr (optional<T> || sequence<T> || fixed_array<T>) {
    visit_schemas_in<typename T::value_type>(visit);
  } else if constexpr (ordered_map<T> || hashed_map<T>) {
    visit_schemas_in<typename T::key_type>(visit);
    visit_schemas_in<typename T::mapped_type>(visit);
  }
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
  sink.put("\n");
  std::array<std::uint64_t, 256> seen{};  // a schema reached twice is written once
  std::size_t seen_count = 0;
  auto line = [&]<class V>(std::type_identity<V>) {  // schema Account 2 <fingerprint>
    for (std::size_t i = 0; i < seen_count; ++i)
      if (seen[i] == fingerprint<V>) return;
    if (seen_count < seen.size()) seen[seen_count++] = fingerprint<V>;
    sink.put("schema ");
    sink.put(schema_of<V>::name);
    sink.put(" ");
    put_number(sink, static_cast<std::size_t>(vsn_of<V>));
    sink.put(" ");
    put_hex(sink, fingerprint<V>);
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
  if constexpr (fine<implementation_check<Implementation>>) return make_module_note<Name, Implementation>();
  else return (void)table_of<Implementation>, std::array<char, 1>{};  // reports the implementation's mistake
}();

}  // namespace detail

namespace errors {
template <class Name>
struct module_name_is_invalid {
  static_assert(reported<module_name_is_invalid>,
                "hotswap: a module's name names its files: use letters, digits, '.', '_' and '-' only, not first '.'");
};
}  // namespace errors

namespace detail {
template <fixed_string Name>
using module_name_check = std::conditional_t<valid_module_name(Name.view()), no_error,
                                             errors::module_name_is_invalid<spelled<errors::schema_named, Name>>>;

inline constexpr std::uint64_t descriptor_magic = 0x3176'6d73'7768'746fULL;  // "othwsmv1"

/// What the program finds through the module's one exported symbol, once the note has passed.
struct module_descriptor {
  std::uint64_t magic;
  const char* note;  // the same text as the section
  const implementation_table* table;
  void (*describe_schemas)(std::vector<version_info>& out);
  /// Links the module to the program (its runtime, its registry, the module's own version and
  /// how the program leases it to servers), then runs the module's static initializers (which
  /// hotswap_add_module's link script defers to here); false, with what one of them threw.
  bool (*attach)(const host_link& host, const lease_maker& leases, std::string& failure) noexcept;
};

}  // namespace detail
}  // namespace hotswap

// Set by the linker around the static initializers hotswap_add_module moved out of .init_array.
extern "C" {
[[gnu::weak, gnu::visibility("hidden")]] extern void (*const __start_hotswap_init_array[])(int, char**, char**);
[[gnu::weak, gnu::visibility("hidden")]] extern void (*const __stop_hotswap_init_array[])(int, char**, char**);
}

namespace hotswap::detail {

template <class Implementation>
void describe_schemas(std::vector<version_info>& out) {
  auto add = [&]<class V>(std::type_identity<V>) { out.push_back(describe<V>()); };
  visit_module_schemas<Implementation>(add);
}

template <class Implementation>
bool attach_module(const host_link& host, const lease_maker& leases, std::string& failure) noexcept {
  module_host = host;
  module_leases() = leases;
  try {
    for (auto* run = __start_hotswap_init_array; run != __stop_hotswap_init_array; ++run) (*run)(0, nullptr, environ);
    return true;
  } catch (const std::exception& thrown) {
    failure = thrown.what();
  } catch (...) {
    failure = "an exception not derived from std::exception";
  }
  return false;
}

template <class Implementation>
inline constexpr module_descriptor make_descriptor(const char* note) {
  return {descriptor_magic, note, &table_of<Implementation>, &describe_schemas<Implementation>,
          &attach_module<Implementation>};
}

}  // namespace hotswap::detail

/// Makes this shared library a module named `name` (a string literal: letters, digits, '.', '_',
/// '-') holding `Implementation`. Once in a library made by hotswap_add_module.
#define HOTSWAP_MODULE(name, Implementation)                                                                       \
  static_assert(::hotswap::detail::building_module,                                                                \
                "hotswap: HOTSWAP_MODULE makes a module: build this file into a library made by "                  \
                "hotswap_add_module() in CMake (or compile it with -DHOTSWAP_MODULE_BUILD -fvisibility=hidden, "   \
                "link it with hotswap_module.ld and seal it with hotswap-seal)");                                  \
  static_assert(sizeof(::hotswap::detail::module_name_check<name>) != 0); /* a bad name, reported once */          \
  [[gnu::used, gnu::retain, gnu::section("hotswap_module")]] constinit const auto hotswap_module_note =            \
      ::hotswap::detail::module_note<name, Implementation>;                                                        \
  [[gnu::used, gnu::retain, gnu::section("hotswap_seal")]] constinit const ::hotswap::detail::module_seal          \
      hotswap_module_seal = {"hotswap seal 1", {}, {}, {}}; /* written by hotswap-seal after the link */           \
  extern "C" [[gnu::visibility("default")]] constinit const ::hotswap::detail::module_descriptor                  \
      hotswap_module_descriptor = ::hotswap::detail::make_descriptor<Implementation>(hotswap_module_note.data())

namespace hotswap {

// ---- modules ----

namespace detail {
template <class Module>
struct lease;
struct module_access;

/// A reference to `server` unless it is already being freed.
inline bool try_acquire(server_core& server) noexcept {
  std::uint32_t count = server.references.load(std::memory_order_relaxed);
  while (count != 0)
    if (server.references.compare_exchange_weak(count, count + 1, std::memory_order_acq_rel)) return true;
  return false;
}
}  // namespace detail

/// One loaded version of a module: what its note says, and the servers using it. Shared by the
/// code server, the servers on it (and whatever else holds its code); its library is unmapped
/// after the last of them lets go (at the code server's next load, purge, retire or collect).
class module_version : public std::enable_shared_from_this<module_version> {
 public:
  const std::string& name() const noexcept { return note_.name; }
  int vsn() const noexcept { return note_.vsn; }
  /// The file it was loaded from, and the private copy it runs from.
  const std::string& path() const noexcept { return path_; }
  const std::string& copy() const noexcept { return copy_; }
  const std::string& implementation() const noexcept { return note_.implementation; }
  const std::string& interface_name() const noexcept { return note_.interface_name; }
  std::uint64_t interface_fingerprint() const noexcept { return note_.interface; }
  template <class Interface>
  bool implements() const noexcept {
    return note_.interface == Interface::fingerprint;
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
                 std::shared_ptr<void> library)
      : note_(std::move(note)), path_(std::move(path)), copy_(std::move(copy)), table_(table),
        library_(std::move(library)) {}

 private:
  template <class>
  friend struct detail::lease;
  friend struct detail::module_access;
  detail::module_note_fields note_;
  std::string path_, copy_;
  const implementation_table* table_;  // reached only with a lease (detail::module_access)
  std::shared_ptr<void> library_;
  mutable detail::spin_lock lock_;
  mutable std::vector<detail::lease<module_version>*> leases_;
};

using module_ptr = std::shared_ptr<const module_version>;

namespace detail {
/// A server's hold on the module it runs (its table_owner, or its state_owner): listed by the
/// module as one of its servers, it keeps the module loaded while the server holds it.
template <class Module>
struct lease {
  std::shared_ptr<const Module> code;
  server_core* server = nullptr;  // bound before the server's init runs

  explicit lease(std::shared_ptr<const Module> of) : code(std::move(of)) {
    const spin_guard hold(code->lock_);
    code->leases_.push_back(this);
  }
  ~lease() {
    const spin_guard hold(code->lock_);
    std::erase(code->leases_, this);
  }
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;
  void bind(server_core& running) noexcept {
    const spin_guard hold(code->lock_);
    server = &running;
  }
};

template <class Module>
std::shared_ptr<const void> make_lease(const std::shared_ptr<const void>& version) {
  return version ? std::make_shared<lease<Module>>(std::static_pointer_cast<const Module>(version)) : nullptr;
}
template <class Module>
void bind_lease(const void* held, server_core& server) noexcept {
  if (held) static_cast<lease<Module>*>(const_cast<void*>(held))->bind(server);
}
inline constexpr lease_maker leases_of_modules{&make_lease<module_version>, &bind_lease<module_version>};

/// A module's table, with the lease that must come with it.
struct module_access {
  static const implementation_table& table(const module_version& version) noexcept { return *version.table_; }
};
}  // namespace detail

namespace detail {
/// start on a module's table, with a lease; `Argument` is void when init takes none.
template <class Interface, class Argument>
result<server_ref<Interface>> start_on_module(const module_ptr& code, const void* argument, start_options options) {
  if (!code) return error{errc::no_module, "no module given"};
  const implementation_table& table = module_access::table(*code);
  if (table.init_argument_fingerprint != argument_fingerprint<Argument>)
    return error{errc::wrong_argument, code->implementation() + " (module " + code->name() + ") takes " +
                                           std::string(table.init_argument_type) + " in init, not " +
                                           std::string(argument_spelling<Argument>)};
  options.table_owner = make_lease<module_version>(code);
  options.bind_owner = &bind_lease<module_version>;
  return hotswap::start<Interface>(table, argument, std::move(options));
}
}  // namespace detail

/// Starts a server running a module's table, passing `argument` to its init. Fails if the
/// module implements another interface or its init takes another argument.
template <class Interface, class Argument>
  requires detail::is_interface<Interface>
result<server_ref<Interface>> start(const module_ptr& code, const Argument& argument, start_options options = {}) {
  return detail::start_on_module<Interface, Argument>(code, &argument, std::move(options));
}

/// Starts a server running a module's table whose init takes no argument.
template <class Interface>
  requires detail::is_interface<Interface>
result<server_ref<Interface>> start(const module_ptr& code, start_options options = {}) {
  return detail::start_on_module<Interface, void>(code, nullptr, std::move(options));
}

namespace detail {
template <class Extra>
result<void> change_code_to_module(const server_handle auto& server, const module_ptr& code, int old_vsn,
                                   const Extra* extra, std::chrono::nanoseconds timeout) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (!code) return error{errc::no_module, "no module given"};
  auto held = make_lease<module_version>(code);
  bind_lease<module_version>(held.get(), *server.core());
  if (!extra) return change_code_request(server, module_access::table(*code), old_vsn, timeout, std::move(held), {}, {});
  auto [reference, kept] = keep_extra(*extra);
  return change_code_request(server, module_access::table(*code), old_vsn, timeout, std::move(held), reference,
                             std::move(kept));
}
}  // namespace detail

namespace sys {
/// change_code to a loaded module: the server then keeps that version loaded.
result<void> change_code(const server_handle auto& server, const module_ptr& code, int old_vsn,
                         std::chrono::nanoseconds timeout = default_timeout) {
  return detail::change_code_to_module<no_extra>(server, code, old_vsn, nullptr, timeout);
}

/// change_code to a loaded module, passing `extra` to its code_change (a duration is the timeout).
template <class Extra>
  requires(!detail::is_instance_of<std::chrono::duration, Extra>)
result<void> change_code(const server_handle auto& server, const module_ptr& code, int old_vsn, const Extra& extra,
                         std::chrono::nanoseconds timeout = default_timeout) {
  return detail::change_code_to_module(server, code, old_vsn, &extra, timeout);
}
}  // namespace sys

// ---- the code server ----

namespace detail {
/// The directory of a code server's private copies, held open from its first use: copies are
/// made and opened relative to it, so that nothing can redirect them once it was checked (not a
/// rename of it, not a symbolic link put in its place). Shared with the closer of the libraries,
/// which may outlive the code server.
struct copy_directory {
  int fd = -1;
  copy_directory() = default;
  copy_directory(const copy_directory&) = delete;
  copy_directory& operator=(const copy_directory&) = delete;
  ~copy_directory() {
    if (fd >= 0) ::close(fd);
  }
  /// What the dynamic loader opens for the copy `name`: a path through the open directory (no
  /// path of the file system is resolved again), never the same for two copies of the process
  /// (glibc takes a library already loaded under the same name for the one asked for).
  std::string path_of(const std::string& name) const {
    return "/proc/self/fd/" + std::to_string(fd) + "/" + name;
  }
};

/// Shared libraries whose last user has gone, closed by the code server (in the program's code:
/// the last user may have been the module's own code, which cannot unmap itself).
template <class = void>
class library_closer {
 public:
  struct closed {
    std::string name;  // of the copy
    bool unmapped;
  };
  explicit library_closer(std::shared_ptr<const copy_directory> directory) : directory_(std::move(directory)) {}
  void add(void* handle, std::string copy) {
    const spin_guard hold(lock_);
    pending_.push_back({handle, std::move(copy)});
  }
  std::vector<closed> close_pending() {
    std::vector<std::pair<void*, std::string>> closing;
    {
      const spin_guard hold(lock_);
      closing.swap(pending_);
    }
    std::vector<closed> done;
    for (auto& [handle, copy] : closing) {
      ::dlclose(handle);
      // glibc keeps a library mapped that registered thread-local destructors or has unique symbols.
      void* still = ::dlopen(directory_->path_of(copy).c_str(), RTLD_LAZY | RTLD_NOLOAD);
      if (still) ::dlclose(still);
      ::unlinkat(directory_->fd, copy.c_str(), 0);
      done.push_back({std::move(copy), still == nullptr});
    }
    return done;
  }

 private:
  std::shared_ptr<const copy_directory> directory_;
  spin_lock lock_;
  std::vector<std::pair<void*, std::string>> pending_;
};

/// Numbers the private copies of the process's code servers.
inline std::uint64_t next_copy_number() noexcept {
  static std::atomic<std::uint64_t> copies{0};
  return copies.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace detail

/// soft: refuse while servers use the old version; force: stop them first.
enum class purge_mode { soft, force };

/// What a purge did.
struct purge_report {
  int vsn = 0;                      ///< the version purged (0: there was no old version)
  std::size_t servers_stopped = 0;  ///< by a forced purge
  bool unmapped = false;            ///< its library is gone from the process
  std::string note;                 ///< why it is still mapped, when it is
};

/// How a code server is set up.
struct code_server_options {
  /// Where private copies of the libraries go (made, mode 0700); empty: a new directory under
  /// $TMPDIR or /tmp. It must allow executable mappings (not mounted noexec).
  std::string directory{};
  /// A larger file is refused at once (errc::too_large), before a byte of it is read: a module
  /// is kilobytes to megabytes, and a load holds the code server.
  std::size_t largest_module = std::size_t{64} << 20;
  /// Ed25519 public keys (PEM, as `hotswap-seal keygen` or `openssl pkey -pubout` write them);
  /// given any, a module not signed by one of them is refused (errc::untrusted). None: a module
  /// need only be sealed (its bytes as its build wrote them).
  std::vector<std::string> trusted_keys{};
};

/// Loads modules, keeping a current and an old version of each, as Erlang's code server. Its
/// operations run one at a time, in the order they are called. (A template only so that a
/// program compiles it where it uses it: use hotswap::code_server.)
template <class = void>
class basic_code_server {
 public:
  explicit basic_code_server(code_server_options options = {})
      : directory_(std::move(options.directory)), largest_module_(options.largest_module) {
    for (std::size_t i = 0; i < options.trusted_keys.size(); ++i) {
      trusted_.push_back(detail::read_public_key(options.trusted_keys[i]));
      if (!trusted_.back() && bad_key_.empty())
        bad_key_ = "trusted key " + std::to_string(i + 1) +
                   " is not an Ed25519 public key in PEM (hotswap-seal keygen writes one), so no module is taken";
    }
  }
  basic_code_server(const basic_code_server&) = delete;
  basic_code_server& operator=(const basic_code_server&) = delete;
  /// Closes what nothing uses; libraries still in use stay mapped (and their copies stay on disk).
  ~basic_code_server() {
    modules_.clear();
    closer_->close_pending();
    if (made_directory_) ::rmdir(directory_.c_str());  // only if empty
  }

  /// Loads the module in `path`, checking it against the program (ABI, schemas) and against
  /// its loaded versions (interface, a newer vsn), and makes it the current version; the
  /// current one becomes old (an old one nothing uses any more is purged first). On any failure
  /// (errc::no_file, unsafe_path, not_a_library, too_large, truncated, no_descriptor, unsealed,
  /// torn, untrusted, abi_mismatch, wrong_interface, schema_conflict, not_newer, not_purged,
  /// load_failed, initializer_failed) the code server and every server are left as they were.
  result<module_ptr> load(const std::string& path) { return load(path, 0, {}); }

  /// The same, checking too that the module implements `Interface` as this program knows it.
  template <class Interface>
  result<module_ptr> load(const std::string& path) {
    return load(path, Interface::fingerprint, Interface::name);
  }

  /// The current and old versions of a module (null if none).
  module_ptr current(std::string_view name) const { return find(name, &entry::current); }
  module_ptr old(std::string_view name) const { return find(name, &entry::old); }

  /// Unloads the old version of `name`. Soft: fails with errc::not_purged, naming the servers
  /// still using it, if any does. Force: stops them first, each within `timeout`; if one cannot
  /// be stopped (a handler that does not return), fails with errc::not_purged naming it, and
  /// keeps the version (its stop may take effect later; purge again then). The library is
  /// unmapped once nothing holds its code (a handle to a stopped server, a pending timer or reply
  /// may, for a while).
  result<purge_report> purge(std::string_view name, purge_mode mode = purge_mode::soft,
                             std::chrono::nanoseconds timeout = default_timeout) {
    const detail::spin_guard one_at_a_time(operation_);
    module_ptr old_version = old(name);
    if (!old_version && !current(name)) return error{errc::no_module, "no module " + std::string(name) + " is loaded"};
    purge_report report;
    if (!old_version) return report;
    report.vsn = old_version->vsn();
    std::vector<any_server> using_it = old_version->servers();
    if (!using_it.empty() && mode == purge_mode::soft)
      return error{errc::not_purged, describe_users(*old_version, using_it) + std::string(advice)};
    std::vector<any_server> running_on;  // what could not be stopped: the version stays
    for (auto& server : using_it) {
      if (stop(server, timeout)) ++report.servers_stopped;
      else if (server.alive()) running_on.push_back(server);
    }
    if (!running_on.empty())
      return error{errc::not_purged, describe_users(*old_version, running_on) + ", which did not stop within " +
                                         std::to_string(timeout.count() / 1'000'000) +
                                         " ms (a handler that has not returned); its stop may take effect later: "
                                         "purge again then"};
    using_it.clear();
    {
      const detail::spin_guard hold(lock_);
      if (entry* found = find_entry(name); found && found->old == old_version) found->old.reset();
    }
    const std::weak_ptr<const module_version> watch = old_version;
    const std::string copy = old_version->copy().substr(old_version->copy().rfind('/') + 1);
    old_version.reset();
    const auto closed = closer_->close_pending();
    if (!watch.expired()) {
      report.note = "still held by " + std::to_string(watch.use_count()) +
                    " holder(s) of its code (a stopped server's handle, a timer, a reply); unmapped at a later "
                    "collect() once they are gone";
      return report;
    }
    for (const auto& one : closed)
      if (one.name == copy) report.unmapped = one.unmapped;
    if (!report.unmapped)
      report.note = "closed, but the system keeps it mapped (it registered thread-local destructors or has unique "
                    "symbols: build it with hotswap_add_module)";
    return report;
  }

  /// Makes the current version of `name` old, as Erlang's code:delete/1: the servers on it run
  /// on, purge can then unload it, and any vsn may be loaded next. An old version nothing uses is
  /// purged first; one that servers still use makes this fail with errc::not_purged.
  result<void> retire(std::string_view name) {
    const detail::spin_guard one_at_a_time(operation_);
    module_ptr purged;
    {
      const detail::spin_guard hold(lock_);
      entry* found = find_entry(name);
      if (!found || !found->current) return error{errc::no_module, "no module " + std::string(name) + " is loaded"};
      if (found->old)
        if (std::vector<any_server> using_it = found->old->servers(); !using_it.empty())
          return error{errc::not_purged,
                       "the old version must go first: " + describe_users(*found->old, using_it) + std::string(advice)};
      purged = std::exchange(found->old, std::exchange(found->current, nullptr));
    }
    purged.reset();
    closer_->close_pending();
    return {};
  }

  /// Unmaps the libraries nothing holds any more; how many.
  std::size_t collect() {
    const detail::spin_guard one_at_a_time(operation_);
    return closer_->close_pending().size();
  }

  /// Where the private copies go (empty until the first load, when none was given).
  std::string directory() const {
    const detail::spin_guard hold(lock_);
    return directory_;
  }

 private:
  struct entry {
    std::string name;
    module_ptr current, old;
  };

  static std::string describe_users(const module_version& version, const std::vector<any_server>& using_it) {
    std::string text = version.name() + " vsn " + std::to_string(version.vsn()) + " is still used by ";
    for (std::size_t i = 0; i < using_it.size(); ++i) {
      detail::server_core& core = *using_it[i].core();
      std::string name;
      {
        const detail::spin_guard hold(core.exit_lock);
        name = core.name;
      }
      text += (i ? ", " : "") + std::string("server ") + std::to_string(core.id) + (name.empty() ? "" : " (" + name + ")");
    }
    return text;
  }
  static constexpr std::string_view advice = ": change their code or stop them first (or purge with purge_mode::force)";

  module_ptr find(std::string_view name, module_ptr entry::*which) const {
    const detail::spin_guard hold(lock_);
    for (const auto& known : modules_)
      if (known.name == name) return known.*which;
    return nullptr;
  }
  entry* find_entry(std::string_view name) {
    for (auto& known : modules_)
      if (known.name == name) return &known;
    return nullptr;
  }

  /// Checks the note against the program and the module's loaded versions.
  result<void> check(const detail::module_note_fields& note, const std::string& path, std::uint64_t interface,
                     std::string_view interface_name) const {
    if (note.abi != abi_fingerprint)
      return detail::file_error(errc::abi_mismatch, path,
                                "built for another ABI: the module has \"" + note.abi_text + "\", this program \"" +
                                    std::string(abi_description) + "\"");
    if (interface && note.interface != interface)
      return detail::file_error(errc::wrong_interface, path,
                                note.implementation + " implements " + note.interface_name +
                                    (note.interface_name == interface_name ? " with other messages than" : ", not") +
                                    " this program's " + std::string(interface_name));
    const module_ptr now = current(note.name), before = old(note.name);
    if (const module_ptr loaded = now ? now : before; loaded && note.interface != loaded->interface_fingerprint())
      return detail::file_error(errc::wrong_interface, path,
                                note.name + " vsn " + std::to_string(note.vsn) + " implements " + note.interface_name +
                                    " differently from the loaded vsn " + std::to_string(loaded->vsn()) + " (" +
                                    loaded->interface_name() + ")");
    if (now && note.vsn <= now->vsn())
      return detail::file_error(errc::not_newer, path,
                                note.name + " vsn " + std::to_string(note.vsn) + " is not newer than the current vsn " +
                                    std::to_string(now->vsn()));
    if (now && before)
      if (std::vector<any_server> using_it = before->servers(); !using_it.empty())
        return detail::file_error(errc::not_purged, path,
                                  "the old version must go first: " + describe_users(*before, using_it) + std::string(advice));
    for (const auto& version : note.schemas)
      if (const auto known = registry().find(version.schema, version.vsn); known && known->fingerprint != version.fingerprint)
        return detail::file_error(errc::schema_conflict, path,
                                  "its schema " + version.schema + " version " + std::to_string(version.vsn) +
                                      " differs from this program's (fields or their types): " +
                                      std::string(known->schema) + "@" + std::to_string(known->vsn) +
                                      " is registered with another fingerprint");
    return {};
  }

  /// The directory of the copies, made and opened on first use. It, and every directory above
  /// it, must be safe (others could otherwise swap it for their own between two loads).
  result<void> open_directory(const std::string& path) {
    if (directory_fd_->fd >= 0) return {};
    std::string directory = this->directory();
    bool made = false;
    if (directory.empty()) {
      const char* base = std::getenv("TMPDIR");
      std::string pattern = std::string(base && *base ? base : "/tmp") + "/hotswap-modules-XXXXXX";
      if (!::mkdtemp(pattern.data()))
        return detail::file_error(errc::load_failed, path,
                                  "cannot make a directory for its copy: " + std::string(std::strerror(errno)));
      directory = pattern;
      made = true;
    } else {
      made = ::mkdir(directory.c_str(), 0700) == 0;
    }
    auto refuse = [&](errc code, const std::string& why) {
      if (made) ::rmdir(directory.c_str());
      return detail::file_error(code, path, why);
    };
    const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat info {};
    if (fd < 0 || ::fstat(fd, &info) != 0) {
      const std::string why = std::strerror(errno);
      if (fd >= 0) ::close(fd);
      return refuse(errc::load_failed, "no directory " + directory + " for its copy: " + why);
    }
    error unsafe{errc::unsafe_path, detail::unsafe_because(info, "the directory " + directory + " for copies")};
    // Above it, as given and as resolved: the directories others could rename it out of.
    std::string resolved = detail::absolute(directory);
    if (char* real = ::realpath(directory.c_str(), nullptr)) {
      resolved = real;
      std::free(real);
    }
    for (const std::string& way : {detail::absolute(directory), resolved})
      if (unsafe.what.empty()) unsafe = detail::unsafe_directory_of(way);
    if (!unsafe.what.empty()) {
      ::close(fd);
      return refuse(unsafe.code, unsafe.what + (unsafe.code == errc::unsafe_path ? " (it holds the directory for copies)" : ""));
    }
    const detail::spin_guard hold(lock_);
    directory_ = directory;
    made_directory_ = made;
    directory_fd_->fd = fd;
    return {};
  }

  /// A private copy of the bytes checked, for this load only, made in the copy directory
  /// (O_EXCL, O_NOFOLLOW: never an existing file, never through a link): its name there.
  result<std::string> write_copy(const std::string& bytes, const detail::module_note_fields& note,
                                 const std::string& path) {
    if (auto opened = open_directory(path); !opened) return opened.error();
    std::string copy;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {  // another process may share the directory
      copy = note.name + "-v" + std::to_string(note.vsn) + "-" + std::to_string(detail::next_copy_number()) + ".so";
      fd = ::openat(directory_fd_->fd, copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0500);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0)
      return detail::file_error(errc::load_failed, path,
                                "cannot write its copy " + directory() + "/" + copy + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) break;
      done += static_cast<std::size_t>(wrote);
    }
    ::close(fd);
    if (done != bytes.size()) {
      ::unlinkat(directory_fd_->fd, copy.c_str(), 0);
      return detail::file_error(errc::load_failed, path, "cannot write its copy " + directory() + "/" + copy);
    }
    return copy;
  }

  result<module_ptr> load(const std::string& path, std::uint64_t interface, std::string_view interface_name) {
    const detail::spin_guard one_at_a_time(operation_);
    closer_->close_pending();
    try {
      return load_checked(path, interface, interface_name);
    } catch (const std::exception& failed) {  // out of memory, most likely: what was opened is closed
      closer_->close_pending();
      return detail::file_error(errc::load_failed, path, failed.what());
    }
  }

  result<module_ptr> load_checked(const std::string& path, std::uint64_t interface, std::string_view interface_name) {
    // Everything the file says is checked before any of its code runs.
    const auto resolved = detail::resolve_safe_path(path);
    if (!resolved) return resolved.error();
    const auto bytes = detail::read_module_file(*resolved, path, largest_module_);
    if (!bytes) return bytes.error();
    const auto sections = detail::find_module_sections(*bytes, path);
    if (!sections) return sections.error();
    if (!bad_key_.empty()) return detail::file_error(errc::untrusted, path, bad_key_);
    if (auto sealed = detail::check_seal(*bytes, sections->seal, trusted_, path); !sealed) return sealed.error();
    const std::string_view text = sections->note;
    const auto note = detail::parse_module_note(text, path);
    if (!note) return note.error();
    if (auto fits = check(*note, path, interface, interface_name); !fits) return fits.error();
    const auto copy = write_copy(*bytes, *note, path);
    if (!copy) return copy.error();

    // Opened through the copy directory's descriptor: static initializers (deferred by the link
    // script) run in attach.
    void* handle = ::dlopen(directory_fd_->path_of(*copy).c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      ::unlinkat(directory_fd_->fd, copy->c_str(), 0);
      return detail::file_error(errc::load_failed, path, ::dlerror());
    }
    std::shared_ptr<void> library(handle, [closer = closer_, copy = *copy](void* opened) { closer->add(opened, copy); });
    const auto* descriptor = static_cast<const detail::module_descriptor*>(::dlsym(handle, "hotswap_module_descriptor"));
    if (!descriptor || descriptor->magic != detail::descriptor_magic || std::string_view(descriptor->note) != text ||
        descriptor->table->interface_fingerprint != note->interface || descriptor->table->vsn != note->vsn) {
      library.reset();
      closer_->close_pending();
      return detail::file_error(errc::no_descriptor, path, "its descriptor is missing or disagrees with its note");
    }
    auto version = std::make_shared<module_version>(*note, path, directory() + "/" + *copy, descriptor->table,
                                                    std::move(library));
    std::string failure;
    const detail::host_link host{&detail::the_runtime(), &registry(), version.get(),
                                 [](const void* self) noexcept -> std::shared_ptr<const void> {
                                   return static_cast<const module_version*>(self)->weak_from_this().lock();
                                 }};
    if (!descriptor->attach(host, detail::leases_of_modules, failure)) {
      version.reset();
      closer_->close_pending();
      return detail::file_error(errc::initializer_failed, path, "a static initializer threw: " + failure);
    }
    std::vector<version_info> schemas;
    descriptor->describe_schemas(schemas);
    for (auto& schema : schemas) registry().add(std::move(schema));  // checked against the registry above

    // Loads run one at a time: what check() saw still holds.
    module_ptr purged;
    {
      const detail::spin_guard hold(lock_);
      entry* found = find_entry(note->name);
      if (!found)
        modules_.push_back(entry{note->name, version, nullptr});
      else if (!found->current)  // retired: the old version stays old
        found->current = version;
      else
        purged = std::exchange(found->old, std::exchange(found->current, version));
    }
    purged.reset();
    closer_->close_pending();
    return module_ptr(std::move(version));
  }

  detail::spin_lock operation_;  // one load, purge, retire or collect at a time
  mutable detail::spin_lock lock_;  // the table below, briefly
  std::string directory_;
  bool made_directory_ = false;
  std::size_t largest_module_;
  std::vector<detail::evp_key> trusted_;
  std::string bad_key_;  // why trusted_ is unusable (a key that did not parse), if it is
  std::vector<entry> modules_;
  std::shared_ptr<detail::copy_directory> directory_fd_ = std::make_shared<detail::copy_directory>();
  std::shared_ptr<detail::library_closer<>> closer_ = std::make_shared<detail::library_closer<>>(directory_fd_);
};

using code_server = basic_code_server<>;

}  // namespace hotswap
