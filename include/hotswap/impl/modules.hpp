// The bodies of <hotswap/modules.hpp> (its declarations, documented, are there): the code
// server's loads, checks, purges and retirements. Included by modules.hpp only.
#pragma once

#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../modules.hpp"

namespace hotswap {

template <class Unused>
basic_code_server<Unused>::basic_code_server(code_server_options options)
    : directory_(std::move(options.directory)),
      largest_module_(options.largest_module),
      development_(options.development) {
  // What earlier programs killed by a signal left where this one makes its copies.
  if (directory_.empty()) detail::sweep_dead_copy_directories(detail::temporary_base());
  for (std::size_t i = 0; i < options.trusted_keys.size(); ++i) {
    trusted_.push_back(detail::read_public_key(options.trusted_keys[i]));
    if (!trusted_.back() && bad_key_.empty())
      bad_key_ = "trusted key " + std::to_string(i + 1) +
                 " is not an Ed25519 public key in PEM (hotswap-seal keygen writes one), so no module is taken";
  }
}

template <class Unused>
basic_code_server<Unused>::~basic_code_server() {
  modules_.clear();
  closer_->close_pending();
  closer_->unlink_all();
  if (made_directory_) ::rmdir(directory_.c_str());  // only if empty
}

template <class Unused>
template <class Interface>
result<module_ptr> basic_code_server<Unused>::load(const std::string& path) {
  return load(path, Interface::fingerprint, Interface::name);
}

template <class Unused>
result<module_info> basic_code_server<Unused>::check(const std::string& path) {
  const detail::spin_guard one_at_a_time(operation_);
  std::string bytes;
  std::string_view text;
  try {
    auto note = check_file(path, 0, {}, bytes, text);
    if (!note) return note.error();
    std::vector<int> from_vsns;
    for (const auto& earlier : note->history) from_vsns.push_back(earlier.vsn);
    return module_info{
        std::move(note->name),           note->vsn,       std::move(note->build), std::move(note->implementation),
        std::move(note->interface_name), note->interface, std::move(from_vsns)};
  } catch (const std::exception& failed) {  // out of memory, most likely
    return detail::file_error(errc::load_failed, path, failed.what());
  }
}

template <class Unused>
std::vector<loaded_module> basic_code_server<Unused>::all_loaded() const {
  const detail::spin_guard hold(lock_);
  std::vector<loaded_module> all;
  for (const auto& known : modules_)
    if (known.current || known.old) all.push_back({known.name, known.current, known.old});
  return all;
}

template <class Unused>
result<purge_report> basic_code_server<Unused>::purge(std::string_view name, purge_mode mode,
                                                      std::chrono::nanoseconds timeout) {
  const detail::spin_guard one_at_a_time(operation_);
  module_ptr old_version = old(name);
  if (!old_version && !current(name)) return error{errc::no_module, "no module " + std::string(name) + " is loaded"};
  purge_report report;
  if (!old_version) return report;
  report.vsn = old_version->vsn();
  std::vector<any_server> using_it = old_version->servers();
  if (!using_it.empty() && mode == purge_mode::soft)
    return error{errc::not_purged, detail::describe_users(*old_version, using_it) + std::string(detail::purge_advice)};
  std::vector<any_server> running_on;  // what could not be stopped: the version stays
  for (auto& server : using_it) {
    if (stop(server, timeout))
      ++report.servers_stopped;
    else if (server.alive())
      running_on.push_back(server);
  }
  if (!running_on.empty())
    return error{errc::not_purged, detail::describe_users(*old_version, running_on) + ", which did not stop within " +
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
    report.note =
        "closed, but the system keeps it mapped (it registered thread-local destructors or has unique "
        "symbols: build it with hotswap_add_module)";
  return report;
}

template <class Unused>
result<void> basic_code_server<Unused>::retire(std::string_view name) {
  const detail::spin_guard one_at_a_time(operation_);
  module_ptr purged;
  {
    const detail::spin_guard hold(lock_);
    entry* found = find_entry(name);
    if (!found || !found->current) return error{errc::no_module, "no module " + std::string(name) + " is loaded"};
    if (found->old)
      if (std::vector<any_server> using_it = found->old->servers(); !using_it.empty())
        return error{errc::not_purged,
                     "the old version must go first: " + detail::describe_users(*found->old, using_it) +
                         std::string(detail::purge_advice)};
    purged = std::exchange(found->old, std::exchange(found->current, nullptr));
  }
  purged.reset();
  closer_->close_pending();
  return {};
}

template <class Unused>
std::size_t basic_code_server<Unused>::collect() {
  const detail::spin_guard one_at_a_time(operation_);
  return closer_->close_pending().size();
}

template <class Unused>
std::string basic_code_server<Unused>::directory() const {
  const detail::spin_guard hold(lock_);
  return directory_;
}

template <class Unused>
module_ptr basic_code_server<Unused>::find(std::string_view name, module_ptr entry::*which) const {
  const detail::spin_guard hold(lock_);
  for (const auto& known : modules_)
    if (known.name == name) return known.*which;
  return nullptr;
}

template <class Unused>
auto basic_code_server<Unused>::find_entry(std::string_view name) -> entry* {
  for (auto& known : modules_)
    if (known.name == name) return &known;
  return nullptr;
}

template <class Unused>
result<void> basic_code_server<Unused>::open_directory(const std::string& path) {
  if (directory_fd_->fd >= 0) return {};
  auto opened = detail::open_copy_directory(directory(), path);
  if (!opened) return opened.error();
  const detail::spin_guard hold(lock_);
  directory_ = std::move(opened->name);
  made_directory_ = opened->made;
  directory_fd_->fd = opened->fd;
  return {};
}

template <class Unused>
result<module_ptr> basic_code_server<Unused>::load(const std::string& path, std::uint64_t interface,
                                                   std::string_view interface_name, bool older) {
  const detail::spin_guard one_at_a_time(operation_);
  closer_->close_pending();
  try {
    return load_checked(path, interface, interface_name, older);
  } catch (const std::exception& failed) {  // out of memory, most likely: what was opened is closed
    closer_->close_pending();
    return detail::file_error(errc::load_failed, path, failed.what());
  }
}

template <class Unused>
result<detail::module_note_fields> basic_code_server<Unused>::read_note(const std::string& path, std::string& bytes,
                                                                        std::string_view& text) {
  const auto resolved = detail::resolve_safe_path(path);
  if (!resolved) return resolved.error();
  auto read = detail::read_module_file(*resolved, path, largest_module_);
  if (!read) return read.error();
  bytes = std::move(*read);
  const auto sections = detail::find_module_sections(bytes, path);
  if (!sections) return sections.error();
  if (!bad_key_.empty()) return detail::file_error(errc::untrusted, path, bad_key_);
  auto sealed = detail::check_seal(bytes, sections->seal, trusted_, path);
  if (!sealed) return sealed.error();
  text = sections->note;
  auto note = detail::parse_module_note(text, path, sections->steps);
  if (note) note->build = std::move(*sealed);
  return note;
}

template <class Unused>
result<detail::module_note_fields> basic_code_server<Unused>::check_file(const std::string& path,
                                                                         std::uint64_t interface,
                                                                         std::string_view interface_name,
                                                                         std::string& bytes, std::string_view& text,
                                                                         bool older) {
  auto note = read_note(path, bytes, text);
  if (!note) return note.error();
  if (auto fits = detail::check_fits(*note, path, interface, interface_name, current(note->name), old(note->name),
                                     registry(), older, development_);
      !fits)
    return fits.error();
  return note;
}

template <class Unused>
void basic_code_server<Unused>::undo_load(module_ptr version) {
  const detail::spin_guard one_at_a_time(operation_);
  module_ptr dropped;
  {
    const detail::spin_guard hold(lock_);
    entry* found = find_entry(version->name());
    if (!found || found->current != version) return;
    dropped = std::exchange(found->current, std::exchange(found->old, nullptr));
    if (!found->current) std::erase_if(modules_, [&](const entry& known) { return !known.current && !known.old; });
  }
  version.reset();
  dropped.reset();
  closer_->close_pending();
}

template <class Unused>
result<module_ptr> basic_code_server<Unused>::load_checked(const std::string& path, std::uint64_t interface,
                                                           std::string_view interface_name, bool older) {
  std::string bytes;
  std::string_view text;
  const auto note = check_file(path, interface, interface_name, bytes, text, older);
  if (!note) return note.error();
  if (auto opened = open_directory(path); !opened) return opened.error();
  const auto copy = detail::write_copy(*directory_fd_, directory(), bytes, *note, path);
  if (!copy) return copy.error();

  // Opened through the copy directory's descriptor: static initializers (deferred by the link
  // script) run in attach.
  void* handle = ::dlopen(directory_fd_->path_of(*copy).c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    ::unlinkat(directory_fd_->fd, copy->c_str(), 0);
    return detail::file_error(errc::load_failed, path, ::dlerror());
  }
  std::shared_ptr<void> library(handle, [closer = closer_, copy = *copy](void* opened) { closer->add(opened, copy); });
  closer_->opened(*copy);
  const auto* descriptor = static_cast<const detail::module_descriptor*>(::dlsym(handle, "hotswap_module_descriptor"));
  std::size_t step_count = 0;
  const detail::module_step* steps =
      descriptor && descriptor->magic == detail::descriptor_magic ? descriptor->steps(step_count) : nullptr;
  const auto steps_listed = [&] {  // the steps it exports are those its note lists
    if (step_count != note->steps.size()) return false;
    for (std::size_t i = 0; i < step_count; ++i)
      if (std::find(note->steps.begin(), note->steps.end(), steps[i].name) == note->steps.end()) return false;
    return true;
  };
  if (!descriptor || descriptor->magic != detail::descriptor_magic || std::string_view(descriptor->note) != text ||
      descriptor->table->interface_fingerprint != note->interface || descriptor->table->vsn != note->vsn ||
      !steps_listed()) {
    library.reset();
    closer_->close_pending();
    return detail::file_error(errc::no_descriptor, path, "its descriptor is missing or disagrees with its note");
  }
  auto version = std::make_shared<module_version>(*note, path, directory() + "/" + *copy, descriptor->table,
                                                  std::move(library), steps, step_count);
  std::string failure;
  const detail::host_link host{&detail::the_runtime(), &registry(), version.get(),
                               [](const void* self) noexcept -> std::shared_ptr<const void> {
                                 return static_cast<const module_version*>(self)->weak_from_this().lock();
                               }};
  if (!descriptor->attach(host, detail::leases_of<module_version>, failure)) {
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

}  // namespace hotswap
