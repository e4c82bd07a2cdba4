// File: tests/bench/callgrind.cc
#include "tests/bench/callgrind.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/bench/child_process.h"

namespace vrpc {
namespace bench {
namespace {

// Total Ir recorded in a callgrind output file: its "summary:" (or
// "totals:") line.
absl::StatusOr<double> TotalIr(const std::string& out) {
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

// Total Ir of one run of |subject| (with |extra_args|) under callgrind.
absl::StatusOr<double> RunOnce(const std::string& subject, const std::string& extra_args,
                               const std::string& tag, const std::string& tmp_dir, int warmup,
                               int count, int timeout_s) {
  const std::string out = absl::StrCat(tmp_dir, "/callgrind.", tag, count, ".out");
  const std::string log = absl::StrCat(tmp_dir, "/callgrind.", tag, count, ".log");
  const std::string cmd = absl::StrCat(
      "timeout -s KILL ", timeout_s, " valgrind --tool=callgrind --callgrind-out-file=", out, " ",
      subject, " --warmup=", warmup, " --count=", count, " ", extra_args, " >", log, " 2>&1");
  const int rc = std::system(cmd.c_str());
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 137) {
    return absl::DeadlineExceededError(
        absl::StrCat("callgrind run did not finish in ", timeout_s, " s; see ", log));
  }
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("callgrind run failed; see ", log));
  }
  return TotalIr(out);
}

absl::Status HaveValgrind() {
  if (std::system("valgrind --version >/dev/null 2>&1") != 0) {
    return absl::NotFoundError("valgrind is not installed (tools/install_deps.sh)");
  }
  return absl::OkStatus();
}

// One round over the device: a server under callgrind, |count| calls from a
// client under callgrind, the server stopped (SIGTERM: it exits cleanly and
// callgrind writes its file). Total Ir of {client, server}.
absl::StatusOr<DeviceInstructions> RunOverDevice(const std::string& bin_dir,
                                                 const std::string& tmp_dir, int warmup,
                                                 int count, int timeout_s) {
  const std::string sock = absl::StrCat(tmp_dir, "/callgrind.vhost.sock");
  const std::string server_out = absl::StrCat(tmp_dir, "/callgrind.server", count, ".out");
  ::unlink(sock.c_str());
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = ChildProcess::Start(
      {"/usr/bin/valgrind", "--tool=callgrind", "--callgrind-out-file=" + server_out,
       bin_dir + "/vrpc_peer", "--role=server", "--notify=interrupt",
       absl::StrCat("--listen=vhost-user:", sock, ":3:5000")},
      "ready", absl::Seconds(timeout_s));
  if (!server.ok()) return server.status();
  absl::StatusOr<double> client =
      RunOnce(bin_dir + "/unary_loop", absl::StrCat("--target=virtio-user:", sock, ":2:5000"),
              "client", tmp_dir, warmup, count, timeout_s);
  const int code = (*server)->Terminate(absl::Seconds(timeout_s));
  if (!client.ok()) return client.status();
  if (code != 0) {
    return absl::InternalError(absl::StrCat("the server under callgrind exited with ", code));
  }
  absl::StatusOr<double> served = TotalIr(server_out);
  if (!served.ok()) return served.status();
  return DeviceInstructions{*client, *served};
}

}  // namespace

absl::StatusOr<double> InstructionsPerCall(const std::string& subject, const std::string& tmp_dir,
                                           int warmup, int n1, int n2, int timeout_s) {
  if (absl::Status s = HaveValgrind(); !s.ok()) return s;
  absl::StatusOr<double> a = RunOnce(subject, "", "", tmp_dir, warmup, n1, timeout_s);
  if (!a.ok()) return a.status();
  absl::StatusOr<double> b = RunOnce(subject, "", "", tmp_dir, warmup, n2, timeout_s);
  if (!b.ok()) return b.status();
  return (*b - *a) / (n2 - n1);
}

absl::StatusOr<DeviceInstructions> InstructionsOverDevice(const std::string& bin_dir,
                                                         const std::string& tmp_dir, int warmup,
                                                         int n1, int n2, int timeout_s) {
  if (absl::Status s = HaveValgrind(); !s.ok()) return s;
  absl::StatusOr<DeviceInstructions> a = RunOverDevice(bin_dir, tmp_dir, warmup, n1, timeout_s);
  if (!a.ok()) return a.status();
  absl::StatusOr<DeviceInstructions> b = RunOverDevice(bin_dir, tmp_dir, warmup, n2, timeout_s);
  if (!b.ok()) return b.status();
  return DeviceInstructions{(b->client - a->client) / (n2 - n1),
                            (b->server - a->server) / (n2 - n1)};
}

}  // namespace bench
}  // namespace vrpc
