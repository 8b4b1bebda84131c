// Reading a module's file before any of its code runs: the path (nobody else could have written
// it), the bytes, the ELF headers (nothing the loader maps lies past the end: a truncated library
// would crash the program when first touched), and the note HOTSWAP_MODULE stamps into it.
// Functions are templates only so that a program that loads no module does not compile them.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "../../result.hpp"
#include "../common/hash.hpp"
#include "../common/std_algorithm.hpp"
#include "module_name.hpp"

namespace hotswap::detail {

/// The ELF64 records read here (the System V ABI's layout), so that <elf.h>'s thousands of
/// macros stay out of every file that includes hotswap.
namespace elf {
struct header {
  unsigned char ident[16];
  std::uint16_t type, machine;
  std::uint32_t version;
  std::uint64_t entry, phoff, shoff;
  std::uint32_t flags;
  std::uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct segment {
  std::uint32_t type, flags;
  std::uint64_t offset, vaddr, paddr, filesz, memsz, align;
};
struct section {
  std::uint32_t name, type;
  std::uint64_t flags, addr, offset, size;
  std::uint32_t link, info;
  std::uint64_t addralign, entsize;
};
static_assert(sizeof(header) == 64 && sizeof(segment) == 56 && sizeof(section) == 64);
inline constexpr unsigned char class_64 = 2, little_endian = 1, big_endian = 2;
inline constexpr std::uint16_t relocatable = 1, shared_object = 3;
inline constexpr std::uint32_t loadable = 1, progbits = 1, nobits = 8;
#if defined(__x86_64__)
inline constexpr std::uint16_t this_machine = 62;
#elif defined(__aarch64__)
inline constexpr std::uint16_t this_machine = 183;
#else
inline constexpr std::uint16_t this_machine = 0;  // none: modules are refused
#endif
}  // namespace elf

/// What a module's note says.
/// The most slots (and versions) an interface has: what a message's kind word holds.
inline constexpr std::size_t largest_slot = 0xffff;
/// The longest schema description a note's is taken with (longer: the message says less).
inline constexpr std::size_t largest_description = 4096;

struct module_note_fields {
  std::uint64_t abi = 0;
  std::string abi_text, name, implementation, interface_name;
  int vsn = 0;
  std::uint64_t interface = 0;
  std::vector<std::uint64_t> interface_lineage;  // the fingerprints of its interface's versions, up to its own
  struct message_slot {                          // a message its interface takes (or took: removed)
    std::uint32_t slot, since;
    std::uint64_t fingerprint;  // of its kind, message and reply
    std::string name;
  };
  std::vector<message_slot> messages;
  std::uint64_t state = 0;    // its state type's fingerprint
  std::string init_argument;  // the type its init takes, as the compiler spells it (empty: none)
  struct earlier_state {      // a vsn its code_change starts from, and the state that vsn held
    int vsn;
    std::uint64_t state;
    bool down = false;     // its code makes that state from its own (a release going down),
    std::string not_down;  // or why not
  };
  std::vector<earlier_state> history;
  struct schema_version {
    std::string schema;
    int vsn;
    std::uint64_t fingerprint;
    std::string description;  // Account@2{owner:string,balance:money}
  };
  std::vector<schema_version> schemas;
  std::vector<std::string> steps;  // the steps it exports (HOTSWAP_MODULE_STEP), by name
  std::string build;               // not in the note: its seal's (check_seal), which covers the note and the code
};

template <class = void>
error file_error(errc code, const std::string& path, const std::string& why) {
  return error{code, path + ": " + why};
}

/// Why `info` makes its file or directory unsafe (empty: it is safe): writable by group or
/// others (a sticky directory such as /tmp excepted: nobody can replace what is in it but its
/// owner), or owned by a user other than root or this one.
template <class = void>
std::string unsafe_because(const struct stat& info, const std::string& what) {
  if (info.st_uid != 0 && info.st_uid != ::geteuid())
    return what + " belongs to another user (uid " + std::to_string(info.st_uid) + ")";
  const bool sticky = S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX);
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) && !sticky)
    return what + " is writable by " + ((info.st_mode & S_IWOTH) ? "every user" : "its group") +
           ": loading it would run code others could have written";
  return {};
}

/// Why a directory from `dir` (absolute) up to / is unsafe, as it is now (no reason: all are safe).
template <class = void>
error unsafe_directory_on(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  for (;; dir.erase(dir.rfind('/'))) {
    const std::string shown = dir.empty() ? "/" : dir;
    struct stat info {};
    if (::stat(shown.c_str(), &info) != 0) return {errc::no_file, shown + ": " + std::strerror(errno)};
    if (std::string why = unsafe_because(info, "the directory " + shown); !why.empty())
      return {errc::unsafe_path, std::move(why)};
    if (dir.empty()) return {errc::unsafe_path, {}};
  }
}

/// The same for the directory of `file` (absolute).
template <class = void>
error unsafe_directory_of(const std::string& file) {
  return unsafe_directory_on(file.substr(0, file.rfind('/')));
}

/// `path` made absolute (from the working directory), not resolved.
template <class = void>
std::string absolute(const std::string& path) {
  if (path.starts_with('/')) return path;
  std::string here(4096, '\0');
  if (!::getcwd(here.data(), here.size())) return path;
  return here.c_str() + std::string("/") + path;
}

/// Why a symbolic link on `path` (absolute), or on what its links point to, would not be followed
/// by a kernel with protected_symlinks (no reason: none): a link in a sticky directory others can
/// write (/tmp) is followed only if it is this user's or the directory owner's; another user
/// could have planted it there.
template <class = void>
std::string planted_link_on(const std::string& path, int depth = 0) {
  if (depth > 40) return "too many symbolic links on the way";
  for (std::size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string prefix = path.substr(0, end);
    struct stat link {
    }, directory{};
    if (::lstat(prefix.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      const std::string parent = prefix.rfind('/') == 0 ? "/" : prefix.substr(0, prefix.rfind('/'));
      if (::stat(parent.c_str(), &directory) == 0 && (directory.st_mode & S_ISVTX) && (directory.st_mode & S_IWOTH) &&
          link.st_uid != ::geteuid() && link.st_uid != directory.st_uid)
        return "the symbolic link " + prefix + " belongs to uid " + std::to_string(link.st_uid) +
               ", in the sticky directory " + parent +
               " others can write: another user could have planted it (protected_symlinks refuses it too)";
      std::string target(4096, '\0');
      const ssize_t size = ::readlink(prefix.c_str(), target.data(), target.size());
      if (size > 0) {
        target.resize(static_cast<std::size_t>(size));
        if (!target.starts_with('/')) target = parent + "/" + target;
        if (std::string why = planted_link_on(target + path.substr(prefix.size()), depth + 1); !why.empty()) return why;
        return {};  // the rest of the path was checked through the link
      }
    }
    if (end == std::string::npos) return {};
  }
}

/// The path with every symbolic link resolved, once every directory on it is safe, and every
/// directory of the path as given too (a symbolic link in a directory others can write could be
/// pointed elsewhere before the next load), and no link on it planted by another user.
template <class = void>
result<std::string> resolve_safe_path(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (!resolved) return file_error(errc::no_file, path, std::strerror(errno));
  const std::string file(resolved);
  std::free(resolved);
  for (const std::string& way : {file, absolute(path)})
    if (error unsafe = unsafe_directory_of(way); !unsafe.what.empty())
      return file_error(unsafe.code, path, unsafe.what);
  if (std::string why = planted_link_on(absolute(path)); !why.empty()) return file_error(errc::unsafe_path, path, why);
  return file;
}

/// The bytes of the file at `resolved` (a safe path), checked on the open file itself: a regular
/// file, safe, at most `largest` bytes (a larger one is refused before a byte is read). Never
/// blocks (a FIFO is refused, not waited on).
template <class = void>
result<std::string> read_module_file(const std::string& resolved, const std::string& path, std::size_t largest) {
  const int fd = ::open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return file_error(errc::no_file, path, std::strerror(errno));
  struct stat info {};
  std::string bytes, why;
  errc code = errc::not_a_library;
  if (::fstat(fd, &info) != 0) {
    code = errc::no_file;
    why = std::strerror(errno);
  } else if (!S_ISREG(info.st_mode)) {
    why = "not a regular file";
  } else if (static_cast<std::uint64_t>(info.st_size) > largest) {
    code = errc::too_large;
    why = std::to_string(info.st_size) + " bytes, more than this code server takes (" + std::to_string(largest) +
          "; code_server_options::largest_module)";
  } else if (why = unsafe_because(info, "the file"); !why.empty()) {
    code = errc::unsafe_path;
  } else {
    bytes.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<std::size_t>(got);
    }
    bytes.resize(done);  // shorter if it shrank while read: the checks below see what was read
  }
  ::close(fd);
  if (!why.empty()) return file_error(code, path, why);
  return bytes;
}

/// What HOTSWAP_MODULE puts in a module's file: its note (text), and its seal (no data: none);
/// and the lines of its steps (HOTSWAP_MODULE_STEP), each a piece of the note's section of its
/// own, NUL-ended as the note is, in the order the linker put them.
struct module_sections {
  std::string_view note, seal;
  std::vector<std::string_view> steps;
};

/// The sections of an ELF shared library for this machine that HOTSWAP_MODULE makes, after
/// checking that every header, loaded segment and section lies inside the file.
template <class = void>
result<module_sections> find_module_sections(std::string_view file, const std::string& path) {
  auto fits = [&](std::uint64_t offset, std::uint64_t size) {
    return offset <= file.size() && size <= file.size() - offset;
  };
  auto read = [&](std::uint64_t offset, auto& out) { std::memcpy(&out, file.data() + offset, sizeof out); };
  if (file.size() < 4 || file.substr(0, 4) !=
                             "\x7f"
                             "ELF")
    return file_error(errc::not_a_library, path, "not a shared library (not an ELF file)");
  if (!fits(0, sizeof(elf::header))) return file_error(errc::truncated, path, "truncated: its ELF header is cut short");
  elf::header header;
  read(0, header);
  const unsigned char byte_order = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? elf::little_endian : elf::big_endian;
  if (header.ident[4] != elf::class_64 || header.ident[5] != byte_order || header.machine != elf::this_machine ||
      sizeof(void*) != 8)
    return file_error(errc::not_a_library, path, "not a shared library for this machine");
  if (header.type != elf::shared_object)
    return file_error(errc::not_a_library, path,
                      header.type == elf::relocatable ? "not a shared library (an object file: link it)"
                                                      : "not a shared library (an executable)");
  if ((header.phnum && header.phentsize != sizeof(elf::segment)) ||
      (header.shnum && header.shentsize != sizeof(elf::section)))
    return file_error(errc::not_a_library, path, "not a shared library (malformed ELF headers)");
  if (!fits(header.phoff, std::uint64_t{header.phnum} * sizeof(elf::segment)))
    return file_error(errc::truncated, path, "truncated: its program headers are cut short");
  for (std::uint64_t i = 0; i < header.phnum; ++i) {
    elf::segment segment;
    read(header.phoff + i * sizeof(elf::segment), segment);
    if (segment.type == elf::loadable && !fits(segment.offset, segment.filesz))
      return file_error(errc::truncated, path, "truncated: a segment ends past the end of the file");
  }
  if (header.shoff == 0 || header.shnum == 0)
    return file_error(errc::no_descriptor, path, "no section headers, so no hotswap module note");
  if (!fits(header.shoff, std::uint64_t{header.shnum} * sizeof(elf::section)) || header.shstrndx >= header.shnum)
    return file_error(errc::truncated, path, "truncated: its section headers are cut short");
  elf::section names;
  read(header.shoff + header.shstrndx * sizeof(elf::section), names);
  if (!fits(names.offset, names.size))
    return file_error(errc::truncated, path, "truncated: its section names are cut short");
  module_sections found_sections;
  bool found = false;
  std::uint64_t initializers = 0;  // bytes of .init_array: what the dynamic loader would run
  for (std::uint64_t i = 0; i < header.shnum; ++i) {
    elf::section section;
    read(header.shoff + i * sizeof(elf::section), section);
    const bool in_file = section.type != elf::nobits;
    if (in_file && !fits(section.offset, section.size))
      return file_error(errc::truncated, path, "truncated: a section ends past the end of the file");
    if (section.name >= names.size) continue;
    const char* name_at = file.data() + names.offset + section.name;
    const std::string_view name(name_at, ::strnlen(name_at, names.size - section.name));
    if (name == ".init_array") initializers += section.size;
    if (name == "hotswap_seal" && in_file) found_sections.seal = file.substr(section.offset, section.size);
    if (name != "hotswap_module") continue;
    if (section.type != elf::progbits)
      return file_error(errc::no_descriptor, path, "its hotswap_module section holds no note");
    // Its pieces, each NUL-ended (zeros between them are the linker's padding): the note, which
    // starts with its header, and the steps' lines.
    std::string_view pieces = file.substr(section.offset, section.size);
    found_sections.note = {};
    found_sections.steps.clear();
    while (!pieces.empty()) {
      const std::string_view piece = pieces.substr(0, pieces.find('\0'));
      pieces.remove_prefix(std::min(pieces.size(), piece.size() + 1));
      if (piece.empty()) continue;
      if (found_sections.note.empty() && (piece.starts_with("hotswap module") || !piece.starts_with("step ")))
        found_sections.note = piece;
      else if (found_sections.steps.size() < most_module_steps + 1)  // one more: refused, not read on
        found_sections.steps.push_back(piece);
      else
        break;
    }
    found = true;
  }
  if (!found)
    return file_error(errc::no_descriptor, path,
                      "a shared library without a hotswap module descriptor (HOTSWAP_MODULE in one of its sources)");
  // One entry is the C runtime's own; more are the module's static initializers, which the
  // loader would run before the code server could catch what they throw.
  if (initializers > sizeof(void*))
    return file_error(errc::load_failed, path,
                      "its static initializers would run as it is opened: link it with hotswap_module.ld "
                      "(hotswap_add_module does)");
  return found_sections;
}

template <class = void>
result<module_note_fields> parse_module_note(std::string_view text, const std::string& path,
                                             const std::vector<std::string_view>& steps = {}) {
  module_note_fields note;
  auto bad = [&](std::string_view line) {
    return file_error(errc::no_descriptor, path, "an unreadable hotswap module note at \"" + std::string(line) + "\"");
  };
  auto number = [](std::string_view word, int base, auto& out) {
    const std::string copy(word);
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(copy.c_str(), &end, base);
    out = static_cast<std::remove_reference_t<decltype(out)>>(value);
    return !copy.empty() && *end == '\0' && errno == 0 &&
           value <= static_cast<unsigned long long>(std::numeric_limits<std::remove_reference_t<decltype(out)>>::max());
  };
  bool header = false;
  while (!text.empty()) {
    const std::string_view line = text.substr(0, text.find('\n'));
    text.remove_prefix(std::min(text.size(), line.size() + 1));
    const auto space = line.find(' ');
    const std::string_view key = line.substr(0, space);
    const std::string_view rest = space == line.npos ? std::string_view{} : line.substr(space + 1);
    const std::string_view first = rest.substr(0, rest.find(' '));
    const std::string_view after_first =
        first.size() < rest.size() ? rest.substr(first.size() + 1) : std::string_view{};
    if (key == "hotswap") {
      if (rest != "module 1")
        return file_error(errc::abi_mismatch, path, "a module note of another format: " + std::string(line));
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
    } else if (key == "interface-version") {  // in order, from 1
      std::size_t vsn = 0;
      std::uint64_t fingerprint = 0;
      if (!number(first, 10, vsn) || vsn != note.interface_lineage.size() + 1 || vsn > largest_slot ||
          !number(after_first, 16, fingerprint))
        return bad(line);
      note.interface_lineage.push_back(fingerprint);
    } else if (key == "message") {  // in order, from 0
      const std::string_view since = after_first.substr(0, after_first.find(' '));
      const std::string_view tail = since.size() < after_first.size() ? after_first.substr(since.size() + 1) : "";
      const std::string_view fingerprint = tail.substr(0, tail.find(' '));
      module_note_fields::message_slot message{0, 0, 0, {}};
      if (!number(first, 10, message.slot) || message.slot != note.messages.size() || message.slot > largest_slot ||
          !number(since, 10, message.since) || !number(fingerprint, 16, message.fingerprint) ||
          fingerprint.size() >= tail.size())
        return bad(line);
      message.name = tail.substr(fingerprint.size() + 1);
      note.messages.push_back(std::move(message));
    } else if (key == "state") {
      if (!number(rest, 16, note.state)) return bad(line);
    } else if (key == "init") {
      note.init_argument = rest;
    } else if (key == "from") {
      module_note_fields::earlier_state earlier{0, 0, false, {}};
      if (!number(first, 10, earlier.vsn) || !number(after_first, 16, earlier.state)) return bad(line);
      note.history.push_back(std::move(earlier));
    } else if (key == "down" || key == "no-down") {  // of the "from" line before it
      int vsn = 0;
      if (note.history.empty() || !number(first, 10, vsn) || vsn != note.history.back().vsn) return bad(line);
      note.history.back().down = key == "down";
      note.history.back().not_down = after_first;
    } else if (key == "schema") {
      const std::string_view vsn = after_first.substr(0, after_first.find(' '));
      module_note_fields::schema_version version{std::string(first), 0, 0, {}};
      if (vsn.size() >= after_first.size()) return bad(line);
      std::string_view fingerprint = after_first.substr(vsn.size() + 1);
      const std::size_t space = fingerprint.find(' ');
      std::string_view description;
      if (space != std::string_view::npos) {
        description = fingerprint.substr(space + 1);
        fingerprint = fingerprint.substr(0, space);
      }
      if (!number(vsn, 10, version.vsn) || !number(fingerprint, 16, version.fingerprint)) return bad(line);
      // Only what the fingerprint vouches for, and not more than an error message can show.
      if (description.size() <= largest_description && fnv1a(description) == version.fingerprint)
        version.description = description;
      note.schemas.push_back(std::move(version));
    }
  }
  if (!header) return bad("hotswap module 1");
  if (note.interface_lineage.empty() || note.interface_lineage.back() != note.interface)
    return bad("interface-version " + std::to_string(note.interface_lineage.size()));
  if (!valid_module_name(note.name)) return bad("name " + note.name);
  // Each step a line of its own piece: `step warm_cache`, once.
  if (steps.size() > most_module_steps)
    return file_error(errc::no_descriptor, path,
                      "a hotswap module note naming more than " + std::to_string(most_module_steps) + " steps");
  for (const std::string_view piece : steps) {
    const std::string_view line = piece.substr(0, piece.find('\n'));
    const std::string_view name = line.starts_with("step ") ? line.substr(5) : std::string_view{};
    if (line.size() + 1 != piece.size() || !valid_step_name(name) ||
        std::find(note.steps.begin(), note.steps.end(), name) != note.steps.end())
      return bad(line.substr(0, std::min<std::size_t>(line.size(), 80)));
    note.steps.emplace_back(name);
  }
  return note;
}

}  // namespace hotswap::detail
