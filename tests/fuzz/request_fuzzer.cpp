// libFuzzer target for the control socket's request decoder: any bytes, as a client could send
// them on a line, must be decoded or refused with errc::bad_request, never crash, hang or leak.
// Built with clang only (-fsanitize=fuzzer,address,undefined); the test command runs it for a
// bounded time from the committed corpus (tests/fuzz/corpus) with a dictionary of the protocol's
// words (tests/fuzz/request.dict).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <hotswap/detail/control/request.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const auto request = hotswap::detail::decode_request(line);
  if (!request) {
    if (request.error().code != hotswap::errc::bad_request) std::abort();
    // An error's reply line is made from what the request said: it must be made too.
    (void)hotswap::detail::reply_line(false, nullptr, request.error());
    return 0;
  }
  // A request decoded is of a known command, with each field its command requires.
  const auto* command = hotswap::detail::find_operator_command(request->command);
  if (!command) std::abort();
  for (const auto& field : command->fields) {
    if (!field.required) continue;
    const bool given = field.name == "release"  ? !request->release.empty()
                       : field.name == "file"   ? !request->file.empty()
                       : field.name == "module" ? !request->module.empty()
                       : field.name == "server" ? !request->server.empty()
                       : field.name == "count"  ? request->count >= 1 && request->count <= 1'000'000
                                                : false;
    if (!given) std::abort();
  }
  return 0;
}
