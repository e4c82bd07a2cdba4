// File: tests/bench/report.h
//
// The comparison's results: figures (measured values) and goals (ratios
// against targets), printed as a table and written as JSON:
//   {"figures": [{"name", "value", "unit", "note"}...],
//    "goals":   [{"goal", "ratio", "target", "met"}...]}
// A figure that could not be measured has a null value and a note saying
// why. Not thread-safe.
#ifndef VRPC_TESTS_BENCH_REPORT_H_
#define VRPC_TESTS_BENCH_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace vrpc {
namespace bench {

struct Figure {
  std::string name;
  std::optional<double> value;  // nullopt: missing (see note)
  std::string unit;
  std::string note;
};

// "ratio <= target" when |at_most|, else "ratio >= target". A goal whose
// ratio is missing is not met.
struct Goal {
  std::string goal;
  std::optional<double> ratio;
  double target = 0;
  bool at_most = true;
  bool met() const;
};

class Report {
 public:
  void Add(std::string name, std::optional<double> value, std::string unit,
           std::string note = "");
  void Missing(std::string name, std::string unit, std::string note) {
    Add(std::move(name), std::nullopt, std::move(unit), std::move(note));
  }
  // The value of figure |name|, if present and measured.
  std::optional<double> Get(const std::string& name) const;
  void AddGoal(std::string goal, std::optional<double> ratio, double target, bool at_most);

  // The table, to stdout.
  void Print() const;
  // Writes the JSON to |path|; an environment error if it cannot.
  absl::Status WriteJson(const std::string& path) const;

  const std::vector<Figure>& figures() const { return figures_; }
  const std::vector<Goal>& goals() const { return goals_; }

 private:
  std::vector<Figure> figures_;
  std::vector<Goal> goals_;
};

}  // namespace bench
}  // namespace vrpc

#endif  // VRPC_TESTS_BENCH_REPORT_H_
