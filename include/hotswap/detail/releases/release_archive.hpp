// A release shipped as one archive (OTP's release_handler:unpack_release/1): a tar file (gzip'd
// or not), flat, holding the manifest `NAME-VSN.release.json`, the module files it names by file
// name, and `NAME-VSN.release.sig`, the signature hotswap-seal pack makes with a module signing key:
//
//     {"hotswap_release_signature": 1, "signer": "<raw Ed25519 public key, hex>", "signature": "<hex>"}
//
// over release_signature_message: the SHA-256 of the manifest and of each module file, in the
// manifest's order. The archive is read by libarchive and treated as hostile: bounded in size and
// entries, regular files only (no link, no directory), names plain (no '/', so no absolute path
// and no `..`), each written with O_EXCL | O_NOFOLLOW into a fresh directory, its size checked
// against its header before and as it is read.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../result.hpp"
#include "../common/utf8.hpp"
#include "../modules/module_seal.hpp"
#include "manifest.hpp"

namespace hotswap::detail {

/// The largest archive unpack opens, the largest file in it, and the most files.
inline constexpr std::uint64_t largest_release_archive = std::uint64_t{1} << 30;
inline constexpr std::uint64_t largest_archive_entry = std::uint64_t{256} << 20;
inline constexpr std::size_t most_archive_entries = 1024;
/// The largest signature file read.
inline constexpr std::size_t largest_release_signature = 4096;

/// The SHA-256 of `bytes`, as hex, a piece at a time.
struct sha256_hex {
  md_context hashing{libcrypto::EVP_MD_CTX_new()};
  sha256_hex() {
    if (!hashing || !libcrypto::EVP_DigestInit_ex(hashing.get(), libcrypto::EVP_sha256(), nullptr))
      throw std::bad_alloc();  // libcrypto fails only to allocate
  }
  void add(const void* bytes, std::size_t size) {
    if (size && !libcrypto::EVP_DigestUpdate(hashing.get(), bytes, size)) throw std::bad_alloc();
  }
  std::string done() {
    seal_digest digest{};
    unsigned int size = 0;
    if (!libcrypto::EVP_DigestFinal_ex(hashing.get(), digest.data(), &size)) throw std::bad_alloc();
    return hex(digest.data(), digest.size());
  }
};

/// What a release's signature signs: the digests of its manifest and of its module files (by file
/// name, in the manifest's order), under a label of its own (no seal's signature verifies as one).
inline std::string release_signature_message(const std::string& manifest_sha256,
                                             const std::vector<std::pair<std::string, std::string>>& modules) {
  std::string message = "hotswap release signature 1\nmanifest " + manifest_sha256 + "\n";
  for (const auto& [file, sha256] : modules) message += "module " + file + " " + sha256 + "\n";
  return message;
}

/// `text` read as hex into `into` (all of it, exactly): false if it is not.
inline bool from_hex(std::string_view text, unsigned char* into, std::size_t size) {
  auto digit = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  if (text.size() != 2 * size) return false;
  for (std::size_t i = 0; i < size; ++i) {
    const int high = digit(text[2 * i]), low = digit(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    into[i] = static_cast<unsigned char>(high * 16 + low);
  }
  return true;
}

/// The signature `text` (of the file `path`) verifies `message` by one of `trusted`: its signer's
/// key in hex, or why not (errc::untrusted).
template <class = void>
result<std::string> check_release_signature(const std::string& text, const std::string& message,
                                            const std::vector<evp_key>& trusted, const std::string& path) {
  const auto json = nlohmann::json::parse(text, nullptr, false);
  raw_key signer{};
  unsigned char signature[64];
  if (json.is_discarded() || !json.is_object() || json.value("hotswap_release_signature", 0) != 1 ||
      !json.contains("signer") || !json["signer"].is_string() || !json.contains("signature") ||
      !json["signature"].is_string() ||
      !from_hex(json["signer"].get_ref<const std::string&>(), signer.data(), signer.size()) ||
      !from_hex(json["signature"].get_ref<const std::string&>(), signature, sizeof signature))
    return error{errc::untrusted, path + ": not a release signature (hotswap-seal pack --key writes one)"};
  const std::string named = hex(signer.data(), signer.size());
  const auto key = std::find_if(trusted.begin(), trusted.end(),
                                [&](const evp_key& candidate) { return raw_public_key(candidate.get()) == signer; });
  if (key == trusted.end())
    return error{errc::untrusted, path + ": signed by key " + named + ", which this code server does not trust"};
  const md_context verifying(libcrypto::EVP_MD_CTX_new());
  libcrypto::ERR_set_mark();
  const bool verified =
      verifying && libcrypto::EVP_DigestVerifyInit(verifying.get(), nullptr, nullptr, nullptr, key->get()) == 1 &&
      libcrypto::EVP_DigestVerify(verifying.get(), signature, sizeof signature,
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  libcrypto::ERR_pop_to_mark();
  if (!verified)
    return error{errc::untrusted, path + ": its signature by key " + named +
                                      " does not verify: the manifest or a module is not what was signed"};
  return named;
}

/// A file unpacked: its name and the SHA-256 of its bytes.
struct unpacked_file {
  std::string name, sha256;
};

/// Writes the files of the release archive `path` into the directory `into` (open; empty, made by
/// the caller), refusing (errc::bad_release, naming the entry) the first that is not a plain
/// regular file of a bounded size. What it wrote before a refusal is the caller's to delete.
template <class = void>
result<std::vector<unpacked_file>> extract_release_archive(const std::string& path, int into) {
  auto bad = [&](const std::string& why) { return error{errc::bad_release, path + ": " + why}; };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return bad(std::string("cannot be read: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) ||
      static_cast<std::uint64_t>(info.st_size) > largest_release_archive) {
    ::close(fd);
    return bad(S_ISREG(info.st_mode) ? "larger than 1 GiB: not a release archive" : "not a regular file");
  }
  struct reader {
    archive* read;
    int fd;
    ~reader() {
      if (read) ::archive_read_free(read);
      ::close(fd);
    }
  } reading{::archive_read_new(), fd};
  if (!reading.read) throw std::bad_alloc();
  ::archive_read_support_format_tar(reading.read);
  ::archive_read_support_filter_gzip(reading.read);
  auto said = [&] {
    const char* why = ::archive_error_string(reading.read);
    return std::string(why ? why : "unreadable");
  };
  if (::archive_read_open_fd(reading.read, fd, 64 * 1024) != ARCHIVE_OK)
    return bad("not a release archive (a tar file, gzip'd or not): " + said());
  std::vector<unpacked_file> files;
  std::uint64_t total = 0;
  std::vector<char> block(64 * 1024);
  for (archive_entry* entry = nullptr;;) {
    const int next = ::archive_read_next_header(reading.read, &entry);
    if (next == ARCHIVE_EOF) break;
    if (next != ARCHIVE_OK) return bad("not a release archive (a tar file, gzip'd or not): " + said());
    if (files.size() == most_archive_entries)
      return bad("more than " + std::to_string(most_archive_entries) + " files: not a release archive");
    const char* named = ::archive_entry_pathname(entry);
    const std::string name = named ? visible(named, false, 200) : std::string();
    if (::archive_entry_hardlink(entry) || ::archive_entry_symlink(entry) ||
        ::archive_entry_filetype(entry) != AE_IFREG)
      return bad(name + ": a link, a directory or a device: a release archive holds regular files only");
    if (name.starts_with('/')) return bad(name + ": an absolute path: a release archive holds file names only");
    if (name == ".." || name.starts_with("../") || name.find("/../") != std::string::npos || name.ends_with("/.."))
      return bad(name + ": a path out of the archive: a release archive holds file names only");
    if (name.find('/') != std::string::npos) return bad(name + ": in a directory: a release archive is flat");
    if (!valid_release_word(name))
      return bad(name + ": not a file name of letters, digits, '.', '_' and '-' (not first '.', '_' or '-')");
    if (!::archive_entry_size_is_set(entry)) return bad(name + ": its size is not in its header");
    const auto size = static_cast<std::uint64_t>(::archive_entry_size(entry));
    if (::archive_entry_size(entry) < 0 || size > largest_archive_entry)
      return bad(name + ": " + std::to_string(::archive_entry_size(entry)) +
                 " bytes, more than the 256 MiB a file of a release may hold");
    if ((total += size) > largest_release_archive) return bad("more than 1 GiB of files: not a release archive");
    const int out = ::openat(into, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
      return bad(name +
                 (errno == EEXIST ? std::string(": twice in the archive") : ": " + std::string(std::strerror(errno))));
    sha256_hex digest;
    std::uint64_t written = 0;
    std::string why;
    for (;;) {
      const la_ssize_t got = ::archive_read_data(reading.read, block.data(), block.size());
      if (got == 0) break;
      if (got < 0) {
        why = said();
        break;
      }
      if ((written += static_cast<std::uint64_t>(got)) > size) {
        why = "more bytes than its header says";
        break;
      }
      digest.add(block.data(), static_cast<std::size_t>(got));
      for (la_ssize_t done = 0; done < got && why.empty();) {
        const ssize_t wrote = ::write(out, block.data() + done, static_cast<std::size_t>(got - done));
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) why = std::string("cannot be written: ") + std::strerror(errno);
        done += wrote > 0 ? wrote : 0;
      }
      if (!why.empty()) break;
    }
    if (why.empty() && written != size) why = "fewer bytes than its header says";
    if (why.empty() && ::fsync(out) != 0) why = std::string("cannot be written: ") + std::strerror(errno);
    ::close(out);
    if (!why.empty()) return bad(name + ": " + why);
    files.push_back({name, digest.done()});
  }
  return files;
}

}  // namespace hotswap::detail
