// File: tests/bench/report.cc
#include "tests/bench/report.h"

#include <cerrno>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vrpc {
namespace bench {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonNumber(std::optional<double> v) {
  if (!v.has_value() || !std::isfinite(*v)) return "null";
  return absl::StrFormat("%.6g", *v);
}

std::string Human(std::optional<double> v) {
  if (!v.has_value()) return "-";
  if (std::fabs(*v) >= 100) return absl::StrFormat("%.0f", *v);
  return absl::StrFormat("%.3g", *v);
}

}  // namespace

bool Goal::met() const {
  if (!ratio.has_value() || !std::isfinite(*ratio)) return false;
  return at_most ? *ratio <= target : *ratio >= target;
}

void Report::Add(std::string name, std::optional<double> value, std::string unit,
                 std::string note) {
  figures_.push_back({std::move(name), value, std::move(unit), std::move(note)});
}

std::optional<double> Report::Get(const std::string& name) const {
  for (const Figure& f : figures_) {
    if (f.name == name) return f.value;
  }
  return std::nullopt;
}

void Report::AddGoal(std::string goal, std::optional<double> ratio, double target, bool at_most) {
  goals_.push_back({std::move(goal), ratio, target, at_most});
}

void Report::Print() const {
  std::printf("\n%-58s %12s  %-8s %s\n", "figure", "value", "unit", "note");
  for (const Figure& f : figures_) {
    std::printf("%-58s %12s  %-8s %s\n", f.name.c_str(), Human(f.value).c_str(), f.unit.c_str(),
                f.note.c_str());
  }
  std::printf("\n%-72s %8s %10s  %s\n", "goal", "ratio", "target", "met");
  for (const Goal& g : goals_) {
    std::printf("%-72s %8s %10s  %s\n", g.goal.c_str(), Human(g.ratio).c_str(),
                absl::StrCat(g.at_most ? "<= " : ">= ", Human(g.target)).c_str(),
                g.met() ? "MET" : "missed");
  }
  std::fflush(stdout);
}

absl::Status Report::WriteJson(const std::string& path) const {
  std::string out = "{\n  \"figures\": [";
  for (size_t i = 0; i < figures_.size(); ++i) {
    const Figure& f = figures_[i];
    absl::StrAppend(&out, i ? ",\n    " : "\n    ", "{\"name\": ", JsonString(f.name),
                    ", \"value\": ", JsonNumber(f.value), ", \"unit\": ", JsonString(f.unit),
                    ", \"note\": ", JsonString(f.note), "}");
  }
  absl::StrAppend(&out, "\n  ],\n  \"goals\": [");
  for (size_t i = 0; i < goals_.size(); ++i) {
    const Goal& g = goals_[i];
    absl::StrAppend(&out, i ? ",\n    " : "\n    ", "{\"goal\": ", JsonString(g.goal),
                    ", \"ratio\": ", JsonNumber(g.ratio),
                    ", \"target\": ", JsonNumber(g.target),
                    ", \"comparison\": ", JsonString(g.at_most ? "<=" : ">="),
                    ", \"met\": ", g.met() ? "true" : "false", "}");
  }
  absl::StrAppend(&out, "\n  ]\n}\n");
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  const bool ok = std::fwrite(out.data(), 1, out.size(), f) == out.size();
  if (std::fclose(f) != 0 || !ok) return absl::ErrnoToStatus(errno, absl::StrCat("write ", path));
  return absl::OkStatus();
}

}  // namespace bench
}  // namespace vrpc
