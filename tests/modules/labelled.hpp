// A server whose state is not plain data: it points at a string constant of the code that made
// it. Its two versions share the state type, so change_code hands the state on untouched.
#pragma once

#include <string>

#include <hotswap/hotswap.hpp>

namespace labelled {
struct Label {};
struct Spawn {};
using Interface = hotswap::interface<"Labelled", hotswap::call_msg<Label, std::string>, hotswap::call_msg<Spawn, bool>>;

struct State {
  const char* label = nullptr;  // into the code that made the state
};

template <int Vsn>
struct Labelled {
  using interface = Interface;
  static constexpr int vsn = Vsn;
  using state = State;
  using state_history = hotswap::state_history<hotswap::version<3 - Vsn, State>>;
  static state init() { return {Vsn == 1 ? "made by v1" : "made by v2"}; }
  static std::string handle_call(const Label&, const state& s) { return s.label; }
  /// Starts a server of this very code from within the module, registered as "spawned".
  static bool handle_call(const Spawn&, const state&) {
    return hotswap::start<Labelled>({.name = "spawned"}).has_value();
  }
};
}  // namespace labelled
