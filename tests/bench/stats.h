// File: tests/bench/stats.h
//
// The benchmarks' clock, sample statistics, and the interleaved comparison the polled ratios use:
// on these 2-vCPU VMs the shared-memory floor moves (about 100, 220 or
// 800+ ns) within seconds, so a baseline measured a minute before the
// subject is not comparable. RunInterleaved alternates short batches of
// the baseline and of the subject and takes the ratio of each side-by-side
// pair of medians; the median of those ratios is the figure.
#ifndef VRPC_TESTS_BENCH_STATS_H_
#define VRPC_TESTS_BENCH_STATS_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <vector>

namespace vrpc {
namespace bench {

using Clock = std::chrono::steady_clock;

// Nanoseconds from |start| until now.
inline double NsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

// The |p| quantile (0..1, nearest rank) of |samples|; 0 when empty.
double Percentile(std::vector<double> samples, double p);
inline double Median(std::vector<double> samples) { return Percentile(std::move(samples), 0.5); }

struct Interleaved {
  std::vector<double> baseline;  // every baseline sample
  std::vector<double> subject;   // every subject sample
  std::vector<double> ratios;    // per round: median(subject) / median(baseline)
  double ratio() const { return Median(ratios); }
};

// |rounds| x (baseline(), subject()); each returns one batch of samples.
// A batch that returns nothing skips its round's ratio.
Interleaved RunInterleaved(int rounds, const std::function<std::vector<double>()>& baseline,
                           const std::function<std::vector<double>()>& subject);

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_STATS_H_
