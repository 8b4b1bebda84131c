// The rules of examples/live_edit's game of life, as a module. Edit `rule` below (B36/S23 is
// HighLife, B3678/S34678 Day & Night), rebuild this module alone:
//
//     cmake --build build --target live_edit_rules
//
// and the running program takes the new rules with its board and its generation.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <hotswap/modules.hpp>

#include "life.hpp"

namespace life {

/// Which neighbour counts bring a dead cell to life (B) and keep a live one alive (S).
constexpr std::string_view rule = "B3/S23";

struct Rules {
  using interface = Life;
  static constexpr int vsn = 1;
  using state = v1::Board;

  /// A 48 x 16 soup, the same every time.
  static state init() {
    state board{48, 16, {}, 0};
    std::uint32_t random = 2026;
    for (int i = 0; i < board.width * board.height; ++i) {
      random = random * 1664525u + 1013904223u;
      board.cells += (random >> 24) % 3 == 0 ? '#' : '.';
    }
    return board;
  }

  static std::string handle_call(const Step&, state& board) {
    bool born[9] = {}, survives[9] = {};
    bool* counts = born;
    for (const char c : rule)
      if (c == 'S' || c == 's')
        counts = survives;
      else if (c >= '0' && c <= '8')
        counts[c - '0'] = true;
    const int w = board.width, h = board.height;
    std::string next(board.cells.size(), '.');
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        int around = 0;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx)
            if (dx || dy)
              around += board.cells[static_cast<std::size_t>((y + dy + h) % h * w + (x + dx + w) % w)] == '#';
        const bool alive = board.cells[static_cast<std::size_t>(y * w + x)] == '#';
        next[static_cast<std::size_t>(y * w + x)] = (alive ? survives[around] : born[around]) ? '#' : '.';
      }
    board.cells = std::move(next);
    ++board.generation;
    std::size_t alive = 0;
    for (const char c : board.cells) alive += c == '#';
    std::string frame = "generation ";  // (appended: g++ 12 warns falsely on a chain of +)
    frame.append(std::to_string(board.generation)).append(": ").append(std::to_string(alive));
    frame.append(" alive, rule ").append(rule).append("\n");
    for (int y = 0; y < h; ++y)
      frame.append("|").append(board.cells, static_cast<std::size_t>(y * w), static_cast<std::size_t>(w)).append("|\n");
    return frame;
  }
};

}  // namespace life

HOTSWAP_MODULE("life.rules", life::Rules);
