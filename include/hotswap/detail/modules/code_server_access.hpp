// The release handler's way into the code server (a module file's note, a load of an older vsn,
// the undoing of a load): declared here, where basic_code_server names it a friend, and defined
// by the releases layer (impl/releases.hpp).
#pragma once

namespace hotswap::detail {

template <class>
struct code_server_access;

}  // namespace hotswap::detail
