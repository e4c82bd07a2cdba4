// File: tests/bench/stats.cc
#include "tests/bench/stats.h"

#include <algorithm>
#include <cmath>

namespace vrpc {
namespace bench {

double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::lround(p * (samples.size() - 1)));
  std::nth_element(samples.begin(), samples.begin() + rank, samples.end());
  return samples[rank];
}

Interleaved RunInterleaved(int rounds, const std::function<std::vector<double>()>& baseline,
                           const std::function<std::vector<double>()>& subject) {
  Interleaved out;
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> b = baseline();
    std::vector<double> s = subject();
    if (!b.empty() && !s.empty()) {
      const double mb = Median(b);
      if (mb > 0) out.ratios.push_back(Median(s) / mb);
    }
    out.baseline.insert(out.baseline.end(), b.begin(), b.end());
    out.subject.insert(out.subject.end(), s.begin(), s.end());
  }
  return out;
}

}  // namespace bench
}  // namespace vrpc
