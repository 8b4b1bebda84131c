// The parts of <chrono> and <functional> hotswap uses (durations and clocks; std::function)
// without the rest: libstdc++ keeps them in headers of their own, which cost a fraction as much to
// include (<chrono>'s calendar and time zones, <functional>'s searchers and hash maps). Other
// standard libraries get the full headers. (std_memory.hpp and std_algorithm.hpp do the same.)
#pragma once

#include <cstddef>  // defines __GLIBCXX__ when the standard library is libstdc++

#if defined(__GLIBCXX__) && __has_include(<bits/chrono.h>) && __has_include(<bits/std_function.h>)
#include <bits/chrono.h>
#include <bits/std_function.h>
#else
#include <chrono>
#include <functional>
#endif
