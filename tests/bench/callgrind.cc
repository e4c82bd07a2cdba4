// File: tests/bench/callgrind.cc
#include "tests/bench/callgrind.h"


#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vrpc {
namespace bench {
namespace {

// Total Ir of one run: callgrind's "summary:" (or "totals:") line.
absl::StatusOr<double> RunOnce(const std::string& subject, const std::string& tmp_dir, int warmup,
                               int count, int timeout_s) {
  const std::string out = absl::StrCat(tmp_dir, "/callgrind.", count, ".out");
  const std::string log = absl::StrCat(tmp_dir, "/callgrind.", count, ".log");
  const std::string cmd =
      absl::StrCat("timeout -s KILL ", timeout_s, " valgrind --tool=callgrind --callgrind-out-file=", out, " ", subject,
                   " --warmup=", warmup, " --count=", count, " >", log, " 2>&1");
  const int rc = std::system(cmd.c_str());
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 137) {
    return absl::DeadlineExceededError(
        absl::StrCat("callgrind run did not finish in ", timeout_s, " s; see ", log));
  }
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("callgrind run failed; see ", log));
  }
  std::ifstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    for (const char* key : {"summary: ", "totals: "}) {
      if (line.rfind(key, 0) == 0) {
        double ir = 0;
        std::istringstream fields(line.substr(std::string(key).size()));
        std::string first;
        fields >> first;
        if (absl::SimpleAtod(first, &ir)) return ir;
      }
    }
  }
  return absl::InternalError(absl::StrCat("no summary in ", out));
}

}  // namespace

absl::StatusOr<double> InstructionsPerCall(const std::string& subject, const std::string& tmp_dir,
                                           int warmup, int n1, int n2, int timeout_s) {
  if (std::system("valgrind --version >/dev/null 2>&1") != 0) {
    return absl::NotFoundError("valgrind is not installed (tools/install_deps.sh)");
  }
  absl::StatusOr<double> a = RunOnce(subject, tmp_dir, warmup, n1, timeout_s);
  if (!a.ok()) return a.status();
  absl::StatusOr<double> b = RunOnce(subject, tmp_dir, warmup, n2, timeout_s);
  if (!b.ok()) return b.status();
  return (*b - *a) / (n2 - n1);
}

}  // namespace bench
}  // namespace vrpc
