// The game of life of examples/live_edit: what the program and its rules module (rules.cpp)
// share, its interface and the state the rules keep, the board.
#pragma once

#include <string>

#include <hotswap/hotswap.hpp>

namespace life {

namespace v1 {
/// A torus of width x height cells, row after row ('#' alive, '.' dead), and how many
/// generations it has lived.
struct Board {
  int width = 0, height = 0;
  std::string cells;
  long generation = 0;
};
}  // namespace v1
using BoardSchema = hotswap::schema<"Board", hotswap::version<1, v1::Board>>;

/// One generation: the board moves on by the rules, and the answer is the frame to show.
struct Step {};
using Life = hotswap::interface<"Life", hotswap::call_msg<Step, std::string>>;

}  // namespace life

template <hotswap::listed_in<life::BoardSchema> T>
struct hotswap::schema_of<T> : life::BoardSchema {};
