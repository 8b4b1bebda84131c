// shared_ptr and unique_ptr without the rest of <memory> (its ranges algorithms and
// parallel policies, half of what it costs to include), as std_parts.hpp does for <chrono>.
#pragma once

#include <cstddef>  // defines __GLIBCXX__ when the standard library is libstdc++

#if defined(__GLIBCXX__) && __has_include(<bits/shared_ptr.h>) && __has_include(<bits/unique_ptr.h>)
#include <bits/shared_ptr.h>
#include <bits/unique_ptr.h>
#else
#include <memory>
#endif
