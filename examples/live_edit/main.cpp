// examples/live_edit: the development loop. A game of life runs in the terminal, its rules in a
// module (rules.cpp); edit the rules, rebuild the module, and the running game takes them with
// its board and its generation count.
//
//     live_edit [--period MS] [--generations N] [--plain] [--modules DIR]
//
// The program loads rules.so from the modules directory through a code server in development
// mode (which takes another build of the same vsn), starts the game's server on it, and watches
// the directory: a rules.so the build rewrites is reloaded and the server upgraded, its board
// handed on. A rebuild whose handler throws goes back to the build before, the board kept.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <hotswap/hotswap.hpp>
#include <hotswap/signals.hpp>
#include <hotswap/watch.hpp>

#include "life.hpp"

int main(int argc, char** argv) {
  int period_ms = 250;
  long generations = 0;
  bool plain = !::isatty(STDOUT_FILENO);
  std::string modules = LIVE_EDIT_MODULES_DIR;
  CLI::App app{
      "A game of life whose rules are a module: edit rules.cpp, rebuild live_edit_rules, and the game "
      "takes the new rules with its board."};
  app.add_option("--period", period_ms, "milliseconds between generations")->check(CLI::Range(1, 60'000));
  app.add_option("--generations", generations, "stop after that many (0: when interrupted)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--plain", plain, "print every frame one after the other, not in place (the default off a terminal)");
  app.add_option("--modules", modules, "the directory of rules.so, which the build writes")
      ->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);

  // Ctrl-C (or SIGTERM) stops the game's server, its terminate run, as OTP's init:stop does.
  hotswap::stop_on_signals signals({SIGINT, SIGTERM});

  hotswap::registry().add<life::BoardSchema>();
  hotswap::code_server code({.development = true});
  auto rules = code.load<life::Life>(modules + "/rules.so");
  if (!rules) {
    fmt::print(stderr, "live_edit: {}\n", rules.error().what);
    return 1;
  }
  auto game = hotswap::start<life::Life>(*rules, {.name = "life"}).value();
  rules->reset();  // the server holds its code: a reload can purge it

  std::mutex said_lock;
  std::string said = fmt::format("watching {} for rules.so", modules);
  hotswap::module_watch watch(code, {.print = [&](const std::string& line) {
                                if (plain) return fmt::print("watch | {}\n", line), (void)std::fflush(stdout);
                                const std::lock_guard hold(said_lock);
                                said = line;
                              }});
  if (auto watched = watch.watch(modules); !watched) {
    fmt::print(stderr, "live_edit: {}\n", watched.error().what);
    return 1;
  }
  if (!plain) fmt::print("\x1b[?25l");  // no cursor while the board is drawn in place
  for (long shown = 0; generations == 0 || shown < generations; ++shown) {
    auto frame = hotswap::call(game, life::Step{});
    if (!frame && game.exit().kind == hotswap::exit_kind::shutdown) break;  // a signal stopped it meanwhile
    if (!frame && frame.error().code != hotswap::errc::handler_failed) {
      fmt::print(stderr, "live_edit: the game stopped: {}\n", frame.error().what);
      return 1;
    }
    const std::string text = frame ? *frame : "the rules threw: " + frame.error().what + "\n";
    if (plain) {
      fmt::print("{}", text);
    } else {
      const std::lock_guard hold(said_lock);
      fmt::print(
          "\x1b[H\x1b[J{}\n{}\nedit examples/live_edit/rules.cpp, then: cmake --build build --target "
          "live_edit_rules (Ctrl-C ends)\n",
          text, said);
    }
    std::fflush(stdout);
    if (signals.wait_for(std::chrono::milliseconds(period_ms))) break;  // the stop has ended
  }
  if (!plain) fmt::print("\x1b[?25h");
  if (signals.signal() != 0) {  // the game's server is stopped, or being stopped: waited for
    signals.wait();
    return signals.outcome() ? 0 : 1;
  }
  return hotswap::stop(game) ? 0 : 1;
}
