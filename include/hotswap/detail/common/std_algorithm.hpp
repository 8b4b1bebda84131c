// The algorithms on iterators without the rest of <algorithm> (its ranges versions and
// parallel policies, half of what it costs to include), as std_parts.hpp does for <chrono>.
#pragma once

#include <cstddef>  // defines __GLIBCXX__ when the standard library is libstdc++

#if defined(__GLIBCXX__) && __has_include(<bits/stl_algo.h>)
#include <bits/stl_algo.h>
#else
#include <algorithm>
#endif
