// Percentiles of latencies timed one by one (Google Benchmark reports means of iterations).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace bench {
inline double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  const auto at = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1));
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(at), samples.end());
  return samples[at];
}
}  // namespace bench
