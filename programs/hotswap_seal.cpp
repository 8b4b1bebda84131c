// hotswap-seal: seals a module after its link (hotswap_add_module runs it), so that a code server
// refuses the file if it is torn or modified; signs the seal with a key, so that a code server
// given trusted keys takes only modules of your build; and makes and checks keys and seals.
//
//   hotswap-seal keygen deploy.pem deploy.pub.pem   # an Ed25519 key pair (the secret one mode 0600)
//   hotswap-seal seal module.so [--key deploy.pem]  # what hotswap_add_module does
//   hotswap-seal verify module.so [--trusted deploy.pub.pem]...
//   hotswap-seal pack anemone-3.release.json anemone-3.release.tar [--key deploy.pem]  # for unpack
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <hotswap/detail/releases/manifest.hpp>
#include <hotswap/detail/releases/release_archive.hpp>
#include <hotswap/modules.hpp>

namespace {

namespace detail = hotswap::detail;

// hotswap declares the libcrypto functions it calls (detail/modules/libcrypto.hpp): this file,
// which includes OpenSSL's headers too, compiles only if the declarations agree. Compared type by
// type: clang refuses an extern "C" function declared twice with two types, but g++ takes it.
static_assert(detail::libcrypto::ed25519 == EVP_PKEY_ED25519 &&
              detail::libcrypto::public_key_part == EVP_PKEY_PUBLIC_KEY);
#define HOTSWAP_SAME_AS_OPENSSL(function)                                                      \
  static_assert(std::is_same_v<decltype(&::function), decltype(&detail::libcrypto::function)>, \
                "detail/modules/libcrypto.hpp declares " #function " otherwise than OpenSSL")
HOTSWAP_SAME_AS_OPENSSL(EVP_MD_CTX_new);
HOTSWAP_SAME_AS_OPENSSL(EVP_MD_CTX_free);
HOTSWAP_SAME_AS_OPENSSL(EVP_sha256);
HOTSWAP_SAME_AS_OPENSSL(EVP_DigestInit_ex);
HOTSWAP_SAME_AS_OPENSSL(EVP_DigestUpdate);
HOTSWAP_SAME_AS_OPENSSL(EVP_DigestFinal_ex);
HOTSWAP_SAME_AS_OPENSSL(EVP_DigestVerifyInit);
HOTSWAP_SAME_AS_OPENSSL(EVP_DigestVerify);
HOTSWAP_SAME_AS_OPENSSL(EVP_PKEY_free);
HOTSWAP_SAME_AS_OPENSSL(EVP_PKEY_get_base_id);
HOTSWAP_SAME_AS_OPENSSL(EVP_PKEY_get_raw_public_key);
HOTSWAP_SAME_AS_OPENSSL(ERR_set_mark);
HOTSWAP_SAME_AS_OPENSSL(ERR_pop_to_mark);
HOTSWAP_SAME_AS_OPENSSL(OSSL_DECODER_CTX_new_for_pkey);
HOTSWAP_SAME_AS_OPENSSL(OSSL_DECODER_from_data);
HOTSWAP_SAME_AS_OPENSSL(OSSL_DECODER_CTX_free);
#undef HOTSWAP_SAME_AS_OPENSSL

/// What went wrong, said once by main.
struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw failure(path + ": cannot read it");
  return {std::istreambuf_iterator<char>(in), {}};
}

using file_ptr = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

/// `path`, new, opened for writing with `mode` (an existing file is not overwritten).
file_ptr create(const std::string& path, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  std::FILE* file = fd < 0 ? nullptr : ::fdopen(fd, "w");
  if (!file) {
    if (fd >= 0) ::close(fd);
    throw failure(path + ": cannot create it (" + std::strerror(errno) + ")");
  }
  return {file, std::fclose};
}

detail::evp_key read_secret_key(const std::string& path) {
  const std::string pem = read_file(path);
  const std::unique_ptr<BIO, int (*)(BIO*)> in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  detail::evp_key key(in ? PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519)
    throw failure(path + ": not an Ed25519 private key in PEM (hotswap-seal keygen writes one)");
  return key;
}

// -- keygen --

void keygen(const std::string& secret_path, const std::string& public_path) {
  const detail::evp_key key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) throw failure("cannot make an Ed25519 key");
  file_ptr published = create(public_path, 0644);  // first: a secret key is never left without its public one
  file_ptr secret = create(secret_path, 0600);
  if (!PEM_write_PUBKEY(published.get(), key.get()) || std::fclose(published.release()) != 0 ||
      !PEM_write_PrivateKey(secret.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ||
      std::fclose(secret.release()) != 0)
    throw failure("cannot write the keys " + secret_path + " and " + public_path);
}

// -- seal --

/// The file, and where its seal is (checked to be one of this hotswap's).
struct module_file {
  std::string bytes;
  std::size_t seal_at;
};
module_file read_module(const std::string& path) {
  module_file file{read_file(path), 0};
  const auto sections = detail::find_module_sections(file.bytes, path);
  if (!sections) throw failure(sections.error().what);
  if (const auto seal = detail::read_seal(sections->seal, path); !seal) throw failure(seal.error().what);
  file.seal_at = static_cast<std::size_t>(sections->seal.data() - file.bytes.data());
  return file;
}

void seal(const std::string& path, const std::string& key_path) {
  const module_file file = read_module(path);
  detail::module_seal seal{};
  std::memcpy(seal.marker, detail::seal_marker, sizeof detail::seal_marker);
  const detail::seal_digest digest = detail::digest_of_module(file.bytes, file.seal_at);
  std::memcpy(seal.digest, digest.data(), digest.size());
  if (!key_path.empty()) {
    const detail::evp_key key = read_secret_key(key_path);
    const std::string message = detail::seal_message(digest);
    const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> signing(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::size_t size = sizeof seal.signature;
    if (!signing || EVP_DigestSignInit(signing.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(signing.get(), seal.signature, &size, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1)
      throw failure(path + ": cannot sign it with " + key_path);
    const detail::raw_key signer = detail::raw_public_key(key.get());
    std::memcpy(seal.signer, signer.data(), signer.size());
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  const bool wrote = fd >= 0 && ::pwrite(fd, &seal, sizeof seal, static_cast<off_t>(file.seal_at)) == sizeof seal;
  const std::string why = std::strerror(errno);
  if ((fd >= 0 && ::close(fd) != 0) || !wrote) throw failure(path + ": cannot write its seal (" + why + ")");
}

// -- verify --

void verify(const std::string& path, const std::vector<std::string>& trusted_paths) {
  std::vector<detail::evp_key> trusted;
  for (const auto& key_path : trusted_paths) {
    trusted.push_back(detail::read_public_key(read_file(key_path)));
    if (!trusted.back()) throw failure(key_path + ": not an Ed25519 public key in PEM");
  }
  const module_file file = read_module(path);
  const std::string_view section(file.bytes.data() + file.seal_at, sizeof(detail::module_seal));
  if (const auto checked = detail::check_seal(file.bytes, section, trusted, path); !checked)
    throw failure(checked.error().what);
  const auto seal = detail::read_seal(section, path).value();
  const bool signed_ = std::any_of(std::begin(seal.signer), std::end(seal.signer), [](auto b) { return b != 0; });
  std::cout << path << ": sealed (sha256 " << detail::hex(seal.digest, sizeof seal.digest) << "), "
            << (signed_ ? "signed by key " + detail::hex(seal.signer, sizeof seal.signer) : std::string("not signed"))
            << (signed_ && trusted.empty() ? " (not checked: no --trusted key given)" : "") << "\n";
}

// -- pack --

std::string sha256(const std::string& bytes) {
  detail::sha256_hex digest;
  digest.add(bytes.data(), bytes.size());
  return digest.done();
}

/// The release in `manifest_path` as one archive for a release handler's unpack: a flat tar of
/// its manifest (its modules named by file name), its module files (each sealed) and, given a
/// key, the signature over the digests of them all (detail/releases/release_archive.hpp).
/// Written by libarchive, to a new file.
void pack(const std::string& manifest_path, const std::string& archive_path, const std::string& key_path) {
  const auto release = detail::read_manifest<>(manifest_path);
  if (!release) throw failure(release.error().what);
  nlohmann::json manifest = nlohmann::json::parse(read_file(manifest_path));  // (read_manifest checked it)
  std::vector<std::pair<std::string, std::string>> files, signed_files;       // (file name, bytes or digest)
  manifest["modules"] = nlohmann::json::array();
  for (const auto& path : release->modules) {
    const std::string name = path.substr(path.rfind('/') + 1);
    for (const auto& file : files)
      if (file.first == name) throw failure(manifest_path + ": two of its modules are files named " + name);
    const module_file module = read_module(path);  // sealed
    signed_files.emplace_back(name, sha256(module.bytes));
    files.emplace_back(name, module.bytes);
    manifest["modules"].push_back(name);
  }
  const std::string stem = release->name + "-" + release->vsn + ".release";
  const std::string text = manifest.dump(2) + "\n";
  files.insert(files.begin(), {stem + ".json", text});
  if (!key_path.empty()) {
    const detail::evp_key key = read_secret_key(key_path);
    const std::string message = detail::release_signature_message(sha256(text), signed_files);
    unsigned char signature[64];
    std::size_t size = sizeof signature;
    const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> signing(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!signing || EVP_DigestSignInit(signing.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(signing.get(), signature, &size, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1)
      throw failure(manifest_path + ": cannot sign it with " + key_path);
    const detail::raw_key signer = detail::raw_public_key(key.get());
    files.emplace_back(stem + ".sig", nlohmann::json{{"hotswap_release_signature", 1},
                                                     {"signer", detail::hex(signer.data(), signer.size())},
                                                     {"signature", detail::hex(signature, sizeof signature)}}
                                              .dump() +
                                          "\n");
  }
  const std::unique_ptr<archive, int (*)(archive*)> out(archive_write_new(), archive_write_free);
  auto check = [&](bool done) {
    if (!done)
      throw failure(archive_path + ": cannot write it (" +
                    (archive_error_string(out.get()) ? archive_error_string(out.get()) : "out of memory") + ")");
  };
  check(out && archive_write_set_format_pax_restricted(out.get()) == ARCHIVE_OK);
  const int fd = ::open(archive_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw failure(archive_path + ": cannot create it (" + std::strerror(errno) + ")");
  check(archive_write_open_fd(out.get(), fd) == ARCHIVE_OK);
  for (const auto& [name, bytes] : files) {
    const std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(bytes.size()));
    check(archive_write_header(out.get(), entry.get()) == ARCHIVE_OK);
    check(archive_write_data(out.get(), bytes.data(), bytes.size()) == static_cast<la_ssize_t>(bytes.size()));
  }
  check(archive_write_close(out.get()) == ARCHIVE_OK);
  if (::close(fd) != 0) throw failure(archive_path + ": cannot write it (" + std::strerror(errno) + ")");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Seals hotswap modules, signs them, and checks their seals."};
  app.require_subcommand(1);
  std::string module, key, secret, published;
  std::vector<std::string> trusted;

  auto* keygen_command = app.add_subcommand("keygen", "Makes an Ed25519 key pair to sign modules with");
  keygen_command->add_option("secret", secret, "The private key to write (mode 0600; signs)")->required();
  keygen_command->add_option("public", published, "The public key to write (for code_server_options::trusted_keys)")
      ->required();
  auto* seal_command = app.add_subcommand("seal", "Writes a module's seal: the digest of its bytes, signed with --key");
  seal_command->add_option("module", module, "The module file, as its link wrote it")
      ->required()
      ->check(CLI::ExistingFile);
  seal_command->add_option("--key", key, "A private key to sign the seal with")->check(CLI::ExistingFile);
  auto* verify_command = app.add_subcommand("verify", "Checks a module's seal as a code server would");
  verify_command->add_option("module", module, "The module file")->required()->check(CLI::ExistingFile);
  verify_command->add_option("--trusted", trusted, "A public key to require a signature by (repeatable)")
      ->check(CLI::ExistingFile);
  std::string manifest, packed;
  auto* pack_command = app.add_subcommand(
      "pack", "Writes a release as one archive for unpack: its manifest, its modules, signed with --key");
  pack_command->add_option("manifest", manifest, "The release's manifest (hotswap_add_release writes it)")
      ->required()
      ->check(CLI::ExistingFile);
  pack_command->add_option("archive", packed, "The archive to write (a new file: NAME-VSN.release.tar)")->required();
  pack_command->add_option("--key", key, "A private key to sign the release with")->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  try {
    if (*keygen_command) keygen(secret, published);
    if (*seal_command) seal(module, key);
    if (*verify_command) verify(module, trusted);
    if (*pack_command) pack(manifest, packed, key);
  } catch (const std::exception& failed) {
    std::cerr << "hotswap-seal: " << failed.what() << "\n";
    return 1;
  }
  return 0;
}
