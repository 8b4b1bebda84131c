// The vocabulary of migrations that the machinery names: declared here, defined (and documented)
// in hotswap/migrations.hpp, whose users name them. Every use below is in a template, so the
// definitions are complete by the time anything is instantiated.
#pragma once

namespace hotswap {
struct no_key;
struct no_extra;
template <class Extra, class Key>
struct context;
}  // namespace hotswap
