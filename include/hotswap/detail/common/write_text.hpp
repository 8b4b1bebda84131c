// Text written through a formatter's output iterator, one character at a time: what result.hpp's
// and inspect's fmt formatters write with (fmt::format_to needs <fmt/format.h>). Includes nothing
// of hotswap: result.hpp, a vocabulary header, includes it.
#pragma once

#include <string_view>

namespace hotswap::detail {

template <class Out>
Out write_text(Out out, std::string_view text) {
  for (const char c : text) *out++ = c;
  return out;
}

}  // namespace hotswap::detail
