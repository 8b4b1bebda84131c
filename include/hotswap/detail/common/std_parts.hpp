// The parts of <chrono> and <functional> hotswap uses (durations and clocks; std::function)
// without the rest: libstdc++ keeps them in headers of their own, which cost a third as much to
// include (<chrono>'s calendar and time zones, <functional>'s searchers and hash maps). Other
// standard libraries get the full headers.
#pragma once

#if __has_include(<bits/chrono.h>) && __has_include(<bits/std_function.h>) && defined(__GLIBCXX__)
#include <bits/chrono.h>
#include <bits/std_function.h>
#else
#include <chrono>
#include <functional>
#endif
