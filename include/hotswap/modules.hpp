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
//     auto v2 = code.load<CounterInterface>("modules/counter_v2.so").value();
//     hotswap::sys::suspend(server);
//     hotswap::sys::change_code(server, v2, 1);   // from vsn 1
//     hotswap::sys::resume(server);
//     code.purge("counter");                      // unloads v1, or names the servers still on it
//
// Everything a module says of itself (ABI, name, vsn, interface, schemas) is text in a section of
// the file, read and checked before the library is opened: a module that does not fit never runs a
// line of its code. Each version is loaded from a private copy (rebuilding the file in place does
// not touch running code), and unmapped only once no server, table, state, timer or reply of its
// code is left.
#pragma once

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
/// standard library and its dual-ABI setting, hotswap's version, the pointer size, exceptions
/// and RTTI. (Types cross between them as they are, so any of these changing is a refusal.)
inline constexpr std::string_view abi_description =
    HOTSWAP_DETAIL_COMPILER "; " HOTSWAP_DETAIL_STDLIB HOTSWAP_DETAIL_DEBUG_CONTAINERS
    "; hotswap " HOTSWAP_VERSION_STRING "; " HOTSWAP_DETAIL_STRING(__SIZEOF_POINTER__) "-byte pointers; "
    HOTSWAP_DETAIL_EXCEPTIONS "; " HOTSWAP_DETAIL_RTTI;
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
  requires(check_implementation<Implementation>())
inline constexpr auto module_note = make_module_note<Name, Implementation>();

inline constexpr std::uint64_t descriptor_magic = 0x3176'6d73'7768'746fULL;  // "othwsmv1"

/// What the program finds through the module's one exported symbol, once the note has passed.
struct module_descriptor {
  std::uint64_t magic;
  const char* note;  // the same text as the section
  const implementation_table* table;
  void (*describe_schemas)(std::vector<version_info>& out);
  /// Links the module to the program's runtime, then runs the module's static initializers (which
  /// hotswap_add_module's link script defers to here); false, with what one of them threw.
  bool (*attach)(const host_link& host, const std::weak_ptr<const void>& self, std::string& failure) noexcept;
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
bool attach_module(const host_link& host, const std::weak_ptr<const void>& self, std::string& failure) noexcept {
  module_host = host;
  module_self() = self;
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

/// Makes this shared library a module named `name` (a string literal) holding `Implementation`.
/// Once in a library made by hotswap_add_module.
#define HOTSWAP_MODULE(name, Implementation)                                                                       \
  static_assert(::hotswap::detail::building_module,                                                                \
                "hotswap: HOTSWAP_MODULE makes a module: build this file into a library made by "                  \
                "hotswap_add_module() in CMake (or compile it with -DHOTSWAP_MODULE_BUILD -fvisibility=hidden "    \
                "and link it with hotswap_module.ld)");                                                            \
  [[gnu::used, gnu::section("hotswap_module")]] constinit const auto hotswap_module_note =                         \
      ::hotswap::detail::module_note<name, Implementation>;                                                        \
  extern "C" [[gnu::visibility("default")]] constinit const ::hotswap::detail::module_descriptor                  \
      hotswap_module_descriptor = ::hotswap::detail::make_descriptor<Implementation>(hotswap_module_note.data())

namespace hotswap {

// ---- reading a module file ----

namespace detail {

/// What a module's note says.
struct module_note_fields {
  std::uint64_t abi = 0;
  std::string abi_text, name, implementation, interface_name;
  int vsn = 0;
  std::uint64_t interface = 0;
  struct schema_version {
    std::string schema;
    int vsn;
    std::uint64_t fingerprint;
  };
  std::vector<schema_version> schemas;
};

template <class = void>  // compiled only where used
error file_error(errc code, const std::string& path, const std::string& why) {
  return error{code, path + ": " + why};
}

/// Refuses a path that someone other than its owner (root or this user) could have written: the
/// file, or a directory above it, writable by group or others (a sticky directory such as /tmp
/// excepted: nobody can replace what is in it but its owner), or owned by another user.
template <class = void>
result<void> check_path_is_safe(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (!resolved) return file_error(errc::no_file, path, std::strerror(errno));
  std::string at(resolved);
  std::free(resolved);
  const uid_t me = ::geteuid();
  for (bool file = true;; file = false) {
    struct stat info {};
    if (::stat(at.empty() ? "/" : at.c_str(), &info) != 0) return file_error(errc::no_file, path, std::strerror(errno));
    const bool sticky = S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX);
    const std::string what = file ? "the file" : "the directory " + (at.empty() ? std::string("/") : at);
    if (info.st_uid != 0 && info.st_uid != me)
      return file_error(errc::unsafe_path, path, what + " belongs to another user (uid " + std::to_string(info.st_uid) + ")");
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) && !sticky)
      return file_error(errc::unsafe_path, path,
                        what + " is writable by " + ((info.st_mode & S_IWOTH) ? "every user" : "its group") +
                            ": loading it would run code others could have written");
    if (at.empty()) return {};
    at.erase(at.rfind('/'));
  }
}

/// The whole file.
template <class = void>
result<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return file_error(errc::no_file, path, std::strerror(errno));
  std::string bytes;
  struct stat info {};
  if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode)) {
    bytes.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (got <= 0) break;
      done += static_cast<std::size_t>(got);
    }
    bytes.resize(done);
  }
  ::close(fd);
  if (!S_ISREG(info.st_mode)) return file_error(errc::not_a_library, path, "not a regular file");
  return bytes;
}

/// The `hotswap_module` section of an ELF shared library for this machine, after checking that
/// nothing the loader would map lies past the end of the file.
template <class = void>
result<std::string_view> find_module_note(std::string_view file, const std::string& path) {
  using header = ElfW(Ehdr);
  using segment = ElfW(Phdr);
  using section = ElfW(Shdr);
  auto fits = [&](std::uint64_t offset, std::uint64_t size) { return offset <= file.size() && size <= file.size() - offset; };
  auto object = [&](std::uint64_t offset, auto* out) { std::memcpy(out, file.data() + offset, sizeof *out); };
  if (file.size() < EI_NIDENT || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0)
    return file_error(errc::not_a_library, path, "not a shared library (not an ELF file)");
  if (!fits(0, sizeof(header))) return file_error(errc::truncated, path, "truncated: its ELF header is cut short");
  header elf;
  object(0, &elf);
#if defined(__x86_64__)
  constexpr auto machine = EM_X86_64;
#elif defined(__aarch64__)
  constexpr auto machine = EM_AARCH64;
#else
  const auto machine = elf.e_machine;
#endif
  if (elf.e_ident[EI_CLASS] != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32) || elf.e_machine != machine)
    return file_error(errc::not_a_library, path, "not a shared library for this machine");
  if (elf.e_type != ET_DYN)
    return file_error(errc::not_a_library, path,
                      elf.e_type == ET_REL ? "not a shared library (an object file: link it)"
                                           : "not a shared library (an executable)");
  if ((elf.e_shnum && elf.e_shentsize != sizeof(section)) || (elf.e_phnum && elf.e_phentsize != sizeof(segment)))
    return file_error(errc::not_a_library, path, "not a shared library (malformed ELF headers)");
  if (!fits(elf.e_phoff, std::uint64_t{elf.e_phnum} * sizeof(segment)))
    return file_error(errc::truncated, path, "truncated: its program headers are cut short");
  for (unsigned i = 0; i < elf.e_phnum; ++i) {
    segment loaded;
    object(elf.e_phoff + i * sizeof(segment), &loaded);
    if (loaded.p_type == PT_LOAD && !fits(loaded.p_offset, loaded.p_filesz))
      return file_error(errc::truncated, path, "truncated: a segment ends past the end of the file");
  }
  if (elf.e_shoff == 0 || elf.e_shnum == 0)
    return file_error(errc::no_descriptor, path, "no section headers, so no hotswap module note");
  if (!fits(elf.e_shoff, std::uint64_t{elf.e_shnum} * sizeof(section)) || elf.e_shstrndx >= elf.e_shnum)
    return file_error(errc::truncated, path, "truncated: its section headers are cut short");
  section names;
  object(elf.e_shoff + elf.e_shstrndx * sizeof(section), &names);
  if (!fits(names.sh_offset, names.sh_size)) return file_error(errc::truncated, path, "truncated: section names cut short");
  for (unsigned i = 0; i < elf.e_shnum; ++i) {
    section one;
    object(elf.e_shoff + i * sizeof(section), &one);
    if (one.sh_type != SHT_NOBITS && !fits(one.sh_offset, one.sh_size))
      return file_error(errc::truncated, path, "truncated: a section ends past the end of the file");
    if (one.sh_name >= names.sh_size) continue;
    const std::string_view name(file.data() + names.sh_offset + one.sh_name,
                                strnlen(file.data() + names.sh_offset + one.sh_name, names.sh_size - one.sh_name));
    if (name == "hotswap_module") {
      const std::string_view text(file.data() + one.sh_offset, one.sh_size);
      return text.substr(0, text.find('\0'));
    }
  }
  return file_error(errc::no_descriptor, path,
                    "a shared library without a hotswap module descriptor (HOTSWAP_MODULE in one of its sources)");
}

template <class = void>
result<module_note_fields> parse_module_note(std::string_view text, const std::string& path) {
  module_note_fields note;
  auto bad = [&](std::string_view line) {
    return file_error(errc::no_descriptor, path, "an unreadable hotswap module note at \"" + std::string(line) + "\"");
  };
  auto number = [](std::string_view word, int base, auto& out) {
    std::string copy(word);
    char* end = nullptr;
    const unsigned long long value = std::strtoull(copy.c_str(), &end, base);
    out = static_cast<std::remove_reference_t<decltype(out)>>(value);
    return !copy.empty() && *end == '\0';
  };
  bool header = false;
  while (!text.empty()) {
    const std::string_view line = text.substr(0, text.find('\n'));
    text.remove_prefix(std::min(text.size(), line.size() + 1));
    const auto space = line.find(' ');
    const std::string_view key = line.substr(0, space);
    const std::string_view rest = space == line.npos ? std::string_view{} : line.substr(space + 1);
    const std::string_view first = rest.substr(0, rest.find(' '));
    const std::string_view after_first = first.size() < rest.size() ? rest.substr(first.size() + 1) : std::string_view{};
    if (key == "hotswap") {
      if (rest != "module 1") return file_error(errc::abi_mismatch, path, "a module note of another format: " + std::string(line));
      header = true;
    } else if (key == "abi") {
      if (!number(first, 16, note.abi)) return bad(line);
      note.abi_text = after_first;
    } else if (key == "name") {
      note.name = rest;
    } else if (key == "vsn") {
      if (!number(rest, 10, note.vsn)) return bad(line);
    } else if (key == "implementation") {
      note.implementation = rest;
    } else if (key == "interface") {
      if (!number(first, 16, note.interface)) return bad(line);
      note.interface_name = after_first;
    } else if (key == "schema") {
      const std::string_view vsn = after_first.substr(0, after_first.find(' '));
      module_note_fields::schema_version version{std::string(first), 0, 0};
      if (vsn.size() >= after_first.size() || !number(vsn, 10, version.vsn) ||
          !number(after_first.substr(vsn.size() + 1), 16, version.fingerprint))
        return bad(line);
      note.schemas.push_back(std::move(version));
    }
  }
  if (!header || note.name.empty()) return bad(text);
  return note;
}

/// Shared libraries whose last user has gone, closed by the code server (in the program's code:
/// the last user may have been the module's own code, which cannot unmap itself).
template <class = void>
class library_closer {
 public:
  struct closed {
    std::string copy;
    bool unmapped;
  };
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
      void* still = ::dlopen(copy.c_str(), RTLD_LAZY | RTLD_NOLOAD);
      if (still) ::dlclose(still);
      ::unlink(copy.c_str());
      done.push_back({std::move(copy), still == nullptr});
    }
    return done;
  }

 private:
  spin_lock lock_;
  std::vector<std::pair<void*, std::string>> pending_;
};

template <class Module>
struct lease;

/// Numbers the private copies of the process's code servers.
inline std::uint64_t next_copy_number() noexcept {
  static std::atomic<std::uint64_t> copies{0};
  return copies.fetch_add(1, std::memory_order_relaxed);
}

/// A reference to `server` unless it is already being freed.
inline bool try_acquire(server_core& server) noexcept {
  std::uint32_t count = server.references.load(std::memory_order_relaxed);
  while (count != 0)
    if (server.references.compare_exchange_weak(count, count + 1, std::memory_order_acq_rel)) return true;
  return false;
}
}  // namespace detail

// ---- modules ----

/// One loaded version of a module: its table and what its note says. Shared by the code server,
/// the servers running it (and whatever they hold of its code); the library is unmapped when the
/// last of them lets go (at the code server's next load, purge or collect).
class module_version {
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
  const implementation_table& table() const noexcept { return *table_; }

  /// The servers running this version now.
  template <class Lease = detail::lease<module_version>>
  std::vector<any_server> servers() const {
    std::vector<any_server> running;
    const detail::spin_guard hold(lock_);
    for (const Lease* held : leases_)
      if (held->server && held->server->alive.load(std::memory_order_acquire) && detail::try_acquire(*held->server))
        running.emplace_back(held->server);
    return running;
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
  detail::module_note_fields note_;
  std::string path_, copy_;
  const implementation_table* table_;
  std::shared_ptr<void> library_;
  mutable detail::spin_lock lock_;
  mutable std::vector<detail::lease<module_version>*> leases_;  // one per server running it (or being started on it)
};

using module_ptr = std::shared_ptr<const module_version>;

namespace detail {
/// A server's hold on the module it runs: kept as the server's table_owner, so it lasts while
/// the server runs the module's table (and, after the server ends, until its last handle goes).
template <class Module>
struct lease {
  std::shared_ptr<const Module> code;
  server_core* server = nullptr;  // set once known

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
  void bind(server_core& running) {
    const spin_guard hold(code->lock_);
    server = &running;
  }
};

}  // namespace detail

/// Starts a server running a module's table, passing `argument` to its init. Fails if the
/// module implements another interface or its init takes another argument.
template <class Interface, class Argument>
result<server_ref<Interface>> start(const module_ptr& code, const Argument& argument, start_options options = {}) {
  if (!code) return error{errc::no_module, "no module given"};
  const implementation_table& table = code->table();
  if (table.init_argument_fingerprint != detail::value_fingerprint<Argument>)
    return error{errc::wrong_argument, code->implementation() + " (module " + code->name() + ") takes " +
                                           std::string(table.init_argument_type) + " in init, not " +
                                           std::string(detail::type_spelling<Argument>())};
  auto held = std::make_shared<detail::lease<module_version>>(code);
  options.table_owner = held;
  auto started = start<Interface>(table, &argument, std::move(options));
  if (started) held->bind(*started->core());
  return started;
}

/// Starts a server running a module's table whose init takes no argument.
template <class Interface>
result<server_ref<Interface>> start(const module_ptr& code, start_options options = {}) {
  if (!code) return error{errc::no_module, "no module given"};
  const implementation_table& table = code->table();
  if (table.init_argument_fingerprint != 0)
    return error{errc::wrong_argument, code->implementation() + " (module " + code->name() + ") takes " +
                                           std::string(table.init_argument_type) + " in init"};
  auto held = std::make_shared<detail::lease<module_version>>(code);
  options.table_owner = held;
  auto started = start<Interface>(table, nullptr, std::move(options));
  if (started) held->bind(*started->core());
  return started;
}

namespace sys {
/// change_code to a loaded module: the server then keeps that version loaded.
result<void> change_code(const server_handle auto& server, const module_ptr& code, int old_vsn,
                         std::chrono::nanoseconds timeout = default_timeout) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (!code) return error{errc::no_module, "no module given"};
  auto held = std::make_shared<detail::lease<module_version>>(code);
  held->bind(*server.core());
  return detail::change_code_request(server, code->table(), old_vsn, timeout, std::move(held), {}, {});
}

/// change_code to a loaded module, passing `extra` to its code_change.
template <class Extra>
result<void> change_code(const server_handle auto& server, const module_ptr& code, int old_vsn, const Extra& extra,
                         std::chrono::nanoseconds timeout = default_timeout) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (!code) return error{errc::no_module, "no module given"};
  auto held = std::make_shared<detail::lease<module_version>>(code);
  held->bind(*server.core());
  auto kept = std::make_shared<const Extra>(extra);
  const extra_ref reference{kept.get(), detail::value_fingerprint<Extra>, detail::type_spelling<Extra>()};
  return detail::change_code_request(server, code->table(), old_vsn, timeout, std::move(held), reference,
                                     std::move(kept));
}
}  // namespace sys

// ---- the code server ----

/// soft: refuse while servers run the old version; force: stop them first.
enum class purge_mode { soft, force };

/// What a purge did.
struct purge_report {
  int vsn = 0;                       ///< the version purged (0: there was no old version)
  std::size_t servers_stopped = 0;   ///< by a forced purge
  bool unmapped = false;             ///< its library is gone from the process
  std::string note;                  ///< why it is still mapped, when it is
};

/// Loads modules, keeping a current and an old version of each, as Erlang's code server. (A
/// template only so that a program compiles it where it uses it: use hotswap::code_server.)
template <class = void>
class basic_code_server {
 public:
  /// Private copies of the libraries go to `directory` (made, mode 0700), by default a new
  /// directory under $TMPDIR or /tmp. It must allow executable mappings (not mounted noexec).
  explicit basic_code_server(std::string directory = {}) : directory_(std::move(directory)) {}
  basic_code_server(const basic_code_server&) = delete;
  basic_code_server& operator=(const basic_code_server&) = delete;
  /// Closes what nothing uses; libraries still in use stay mapped (and their copies stay on disk).
  ~basic_code_server() {
    modules_.clear();
    closer_->close_pending();
    if (made_directory_) ::rmdir(directory_.c_str());  // only if empty
  }

  /// Loads the module in `path`, checking it against the program (ABI, schemas) and against
  /// its current version (interface, a newer vsn), and makes it the current version; the
  /// current one becomes old (an old one nothing runs any more is purged first). On any failure
  /// (errc::no_file, unsafe_path, not_a_library, truncated, no_descriptor, abi_mismatch,
  /// wrong_interface, schema_conflict, not_newer, load_failed, initializer_failed, not_purged)
  /// nothing changes.
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
  /// still on it, if any runs it. Force: stops them first. The library is unmapped once nothing
  /// holds its code (a handle to a stopped server, a pending timer or reply may, for a while).
  result<purge_report> purge(std::string_view name, purge_mode mode = purge_mode::soft) {
    module_ptr old_version;
    {
      const detail::spin_guard hold(lock_);
      entry* found = find_entry(name);
      if (!found) return error{errc::no_module, "no module " + std::string(name) + " is loaded"};
      old_version = found->old;
    }
    purge_report report;
    if (!old_version) return report;
    report.vsn = old_version->vsn();
    std::vector<any_server> running = old_version->servers();
    if (!running.empty() && mode == purge_mode::soft)
      return error{errc::not_purged, describe_running(*old_version, running)};
    for (auto& server : running)
      if (stop(server)) ++report.servers_stopped;
    running.clear();
    {
      const detail::spin_guard hold(lock_);
      entry* found = find_entry(name);
      if (found && found->old == old_version) found->old.reset();
    }
    std::weak_ptr<const module_version> watch = old_version;
    const std::string copy = old_version->copy();
    old_version.reset();
    report.unmapped = !watch.expired() ? false : unmapped(closer_->close_pending(), copy, report.note);
    if (!watch.expired())
      report.note = "still held by " + std::to_string(watch.use_count()) +
                    " holder(s) of its code (a stopped server's handle, a timer, a reply); unmapped at a later "
                    "collect() once they are gone";
    return report;
  }

  /// Makes the current version of `name` old, as Erlang's code:delete/1: the servers on it run
  /// on, purge can then unload it, and any vsn may be loaded next. An old version nothing runs is
  /// purged first; one that servers still run makes this fail with errc::not_purged.
  result<void> retire(std::string_view name) {
    module_ptr purged;
    {
      const detail::spin_guard hold(lock_);
      entry* found = find_entry(name);
      if (!found || !found->current) return error{errc::no_module, "no module " + std::string(name) + " is loaded"};
      if (found->old) {
        if (std::vector<any_server> running = found->old->servers(); !running.empty())
          return error{errc::not_purged, "the old version must go first: " + describe_running(*found->old, running)};
      }
      purged = std::exchange(found->old, std::exchange(found->current, nullptr));
    }
    purged.reset();
    closer_->close_pending();
    return {};
  }

  /// Unmaps the libraries nothing holds any more; how many.
  std::size_t collect() { return closer_->close_pending().size(); }

  const std::string& directory() const noexcept { return directory_; }

 private:
  struct entry {
    std::string name;
    module_ptr current, old;
  };

  static bool unmapped(const std::vector<typename detail::library_closer<>::closed>& closed, const std::string& copy,
                       std::string& note) {
    for (const auto& one : closed)
      if (one.copy == copy) {
        if (!one.unmapped)
          note = "closed, but the system keeps it mapped (it registered thread-local destructors or has unique "
                 "symbols: build it with hotswap_add_module)";
        return one.unmapped;
      }
    return false;
  }

  static std::string describe_running(const module_version& version, const std::vector<any_server>& running) {
    std::string text = version.name() + " vsn " + std::to_string(version.vsn()) + " still runs in ";
    for (std::size_t i = 0; i < running.size(); ++i) {
      detail::server_core& core = *running[i].core();
      std::string name;
      {
        const detail::spin_guard hold(core.exit_lock);
        name = core.name;
      }
      text += (i ? ", " : "") + std::string("server ") + std::to_string(core.id) + (name.empty() ? "" : " (" + name + ")");
    }
    return text + ": change their code or stop them first (or purge with purge_mode::force)";
  }

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

  /// Checks the note against the program and the module's current version.
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
    const module_ptr now = current(note.name);
    if (const module_ptr loaded = now ? now : old(note.name); loaded && note.interface != loaded->interface_fingerprint())
      return detail::file_error(errc::wrong_interface, path,
                                note.name + " vsn " + std::to_string(note.vsn) + " implements " + note.interface_name +
                                    " differently from the loaded vsn " + std::to_string(loaded->vsn()) + " (" +
                                    loaded->interface_name() + ")");
    if (now && note.vsn <= now->vsn())
      return detail::file_error(errc::not_newer, path,
                                note.name + " vsn " + std::to_string(note.vsn) + " is not newer than the current vsn " +
                                    std::to_string(now->vsn()));
    for (const auto& version : note.schemas)
      if (const auto known = registry().find(version.schema, version.vsn); known && known->fingerprint != version.fingerprint)
        return detail::file_error(errc::schema_conflict, path,
                                  "its schema " + version.schema + " version " + std::to_string(version.vsn) +
                                      " differs from this program's (fields or their types): " +
                                      std::string(known->schema) + "@" + std::to_string(known->vsn) +
                                      " is registered with another fingerprint");
    return {};
  }

  /// A private copy of the file's bytes, for this load only.
  /// The directory of the copies, made on first use; one that others could write to is refused
  /// (they could replace a copy between its writing and its loading).
  result<void> prepare_directory(const std::string& path) {
    const detail::spin_guard hold(lock_);
    if (directory_checked_) return {};
    if (directory_.empty()) {
      const char* base = std::getenv("TMPDIR");
      std::string pattern = std::string(base && *base ? base : "/tmp") + "/hotswap-modules-XXXXXX";
      if (!::mkdtemp(pattern.data()))
        return detail::file_error(errc::load_failed, path,
                                  "cannot make a directory for its copy: " + std::string(std::strerror(errno)));
      directory_ = pattern;
      made_directory_ = true;
    } else if (::mkdir(directory_.c_str(), 0700) == 0) {
      made_directory_ = true;
    }
    if (auto safe = detail::check_path_is_safe(directory_); !safe)
      return detail::file_error(errc::unsafe_path, path, "the directory for copies is unsafe: " + safe.error().what);
    directory_checked_ = true;
    return {};
  }

  result<std::string> write_copy(const std::string& bytes, const detail::module_note_fields& note, const std::string& path) {
    if (auto ready = prepare_directory(path); !ready) return ready.error();
    std::string copy;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {  // another process may share the directory
      copy = directory_ + "/" + note.name + "-v" + std::to_string(note.vsn) + "-" +
             std::to_string(detail::next_copy_number()) + ".so";
      fd = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) return detail::file_error(errc::load_failed, path, "cannot write its copy " + copy + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (wrote <= 0) break;
      done += static_cast<std::size_t>(wrote);
    }
    ::close(fd);
    if (done != bytes.size()) {
      ::unlink(copy.c_str());
      return detail::file_error(errc::load_failed, path, "cannot write its copy " + copy);
    }
    return copy;
  }

  result<module_ptr> load(const std::string& path, std::uint64_t interface, std::string_view interface_name) {
    closer_->close_pending();
    // Everything the file says is checked before any of its code runs.
    if (auto safe = detail::check_path_is_safe(path); !safe) return safe.error();
    auto bytes = detail::read_file(path);
    if (!bytes) return bytes.error();
    auto text = detail::find_module_note(*bytes, path);
    if (!text) return text.error();
    auto note = detail::parse_module_note(*text, path);
    if (!note) return note.error();
    if (auto fits = check(*note, path, interface, interface_name); !fits) return fits.error();
    auto copy = write_copy(*bytes, *note, path);
    if (!copy) return copy.error();

    // Opened from the copy: static initializers (deferred by the link script) run in attach.
    void* handle = ::dlopen(copy->c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      ::unlink(copy->c_str());
      return detail::file_error(errc::load_failed, path, ::dlerror());
    }
    auto fail = [&](errc code, const std::string& why) -> result<module_ptr> {
      ::dlclose(handle);
      ::unlink(copy->c_str());
      return detail::file_error(code, path, why);
    };
    const auto* descriptor = static_cast<const detail::module_descriptor*>(::dlsym(handle, "hotswap_module_descriptor"));
    if (!descriptor || descriptor->magic != detail::descriptor_magic)
      return fail(errc::no_descriptor, "its note has no descriptor beside it (hotswap_module_descriptor)");
    if (std::string_view(descriptor->note) != *text || descriptor->table->interface_fingerprint != note->interface ||
        descriptor->table->vsn != note->vsn)
      return fail(errc::no_descriptor, "its descriptor disagrees with its note");

    std::shared_ptr<void> library(handle, [closer = closer_, copy = *copy](void* opened) { closer->add(opened, copy); });
    auto version = std::make_shared<module_version>(*note, path, *copy, descriptor->table, std::move(library));
    std::string failure;
    if (!descriptor->attach(detail::host_link{&detail::the_runtime(), &registry()}, version, failure)) {
      version.reset();  // closed below, in the program's code
      closer_->close_pending();
      return detail::file_error(errc::initializer_failed, path, "a static initializer threw: " + failure);
    }
    std::vector<version_info> schemas;
    descriptor->describe_schemas(schemas);

    // Installed only if it is still newer than the current version, and the old version is free.
    module_ptr purged;
    std::optional<error> refused;
    {
      const detail::spin_guard hold(lock_);
      entry* found = find_entry(note->name);
      if (found && found->current && found->current->vsn() >= note->vsn) {
        refused = detail::file_error(errc::not_newer, path,
                                     note->name + " vsn " + std::to_string(note->vsn) +
                                         " is not newer than the current vsn " + std::to_string(found->current->vsn()));
      } else if (std::vector<any_server> running;
                 found && found->current && found->old && !(running = found->old->servers()).empty()) {
        refused = detail::file_error(errc::not_purged, path,
                                     "the old version must go first: " + describe_running(*found->old, running));
      } else if (!found) {
        modules_.push_back(entry{note->name, version, nullptr});
      } else if (!found->current) {  // retired: the old version stays old
        found->current = version;
      } else {
        purged = std::exchange(found->old, std::exchange(found->current, version));
      }
    }
    if (refused) version.reset();
    purged.reset();
    closer_->close_pending();
    if (refused) return std::move(*refused);
    for (auto& schema : schemas) {
      try {
        registry().add(std::move(schema));
      } catch (const schema_conflict&) {  // checked before loading; a concurrent load may have won
      }
    }
    return module_ptr(version);
  }

  mutable detail::spin_lock lock_;
  std::string directory_;
  bool made_directory_ = false, directory_checked_ = false;
  std::vector<entry> modules_;
  std::shared_ptr<detail::library_closer<>> closer_ = std::make_shared<detail::library_closer<>>();
};

using code_server = basic_code_server<>;

}  // namespace hotswap
