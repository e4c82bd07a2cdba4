// File: host_agent/client/agent_ops.h
//
// The client side of vrpc.agent.Agent's multi-message operations (run a
// program, copy a file in or out with its SHA-256 checked), written once
// for any stub with the generated shape: vrpc's (Agent::Stub over a
// Channel: AgentClient, the C ABI) and gRPC's (through the host agent's
// gateway: vrpcctl). A Traits type supplies the differences:
//
//   struct Traits {
//     using Stub = ...;      // the generated stub
//     using Context = ...;   // its per-call context
//     std::unique_ptr<Context> NewContext() const;  // metadata, deadline
//     static absl::Status ToStatus(const <the stub's status>&);
//   };
//
// Files stream in kChunk pieces (under every message limit); nothing is
// held in memory beyond one chunk. A download lands in a temporary file
// beside the target and is renamed into place only if size and SHA-256
// match.
#ifndef VRPC_HOST_AGENT_CLIENT_AGENT_OPS_H_
#define VRPC_HOST_AGENT_CLIENT_AGENT_OPS_H_

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/base/sha256.h"
#include "proto/agent/agent.pb.h"

namespace vrpc {
namespace agent_client {

inline constexpr size_t kChunk = 256 * 1024;

// Called with bytes done and the total (0 when unknown).
using Progress = std::function<void(uint64_t done, uint64_t total)>;
// Called with a piece of a program's stdout or stderr.
using Output = std::function<void(const std::string& bytes)>;
// Fills |*bytes| with the next piece of stdin; false at its end.
using Input = std::function<bool(std::string* bytes)>;

struct ExecResult {
  int exit_code = 0;  // -1 when killed by a signal
  int signal = 0;
  uint32_t pid = 0;
};

// Runs |argv| in the guest. Output goes to the callbacks as it arrives;
// stdin (if |input| is set) is sent from a second thread while it does.
template <typename Traits>
absl::StatusOr<ExecResult> Exec(const Traits& traits, typename Traits::Stub& stub,
                                const std::vector<std::string>& argv, const Input& input,
                                const Output& on_stdout, const Output& on_stderr) {
  auto ctx = traits.NewContext();
  auto stream = stub.Exec(ctx.get());
  agent::ExecRequest start;
  for (const std::string& a : argv) start.mutable_start()->add_argv(a);
  start.mutable_start()->set_stdin(static_cast<bool>(input));
  if (!stream->Write(start)) return Traits::ToStatus(stream->Finish());
  std::thread feeder;
  if (input) {
    feeder = std::thread([&] {
      std::string bytes;
      agent::ExecRequest req;
      while (input(&bytes)) {
        req.set_stdin(bytes);
        if (!stream->Write(req)) return;
      }
      req.set_close_stdin(true);
      stream->Write(req);
    });
  }
  ExecResult result;
  bool exited = false;
  agent::ExecResponse r;
  while (stream->Read(&r)) {
    if (r.has_stdout()) {
      if (on_stdout) on_stdout(r.stdout());
    } else if (r.has_stderr()) {
      if (on_stderr) on_stderr(r.stderr());
    } else if (r.has_pid()) {
      result.pid = r.pid();
    } else if (r.has_exit()) {
      result.exit_code = r.exit().code();
      result.signal = r.exit().signal();
      exited = true;
    }
  }
  if (feeder.joinable()) feeder.join();
  stream->WritesDone();
  absl::Status s = Traits::ToStatus(stream->Finish());
  if (!s.ok()) return s;
  if (!exited) return absl::DataLossError("the program's exit status never came");
  return result;
}

// Copies the local file |local| to |remote| in the guest.
template <typename Traits>
absl::Status PutFile(const Traits& traits, typename Traits::Stub& stub, const std::string& local,
                     const std::string& remote, bool overwrite, const Progress& progress) {
  const int fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", local));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(local, " is not a regular file"));
  }
  const uint64_t total = static_cast<uint64_t>(st.st_size);
  agent::PutFileResponse response;
  auto ctx = traits.NewContext();
  auto writer = stub.PutFile(ctx.get(), &response);
  agent::PutFileRequest req;
  req.mutable_start()->set_path(remote);
  req.mutable_start()->set_mode(st.st_mode & 0777);
  req.mutable_start()->set_overwrite(overwrite);
  req.mutable_start()->set_size(total);
  bool ok = writer->Write(req);
  Sha256 hash;
  uint64_t done = 0;
  std::string* data = req.mutable_data();
  absl::Status local_error;
  while (ok) {
    data->resize(kChunk);
    const ssize_t n = ::read(fd, data->data(), kChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      local_error = absl::ErrnoToStatus(errno, absl::StrCat("reading ", local));
      break;
    }
    if (n == 0) break;
    data->resize(static_cast<size_t>(n));
    hash.Update(*data);
    ok = writer->Write(req);
    done += static_cast<uint64_t>(n);
    if (progress) progress(done, total);
  }
  ::close(fd);
  const std::string sha = hash.Finish();
  if (ok && local_error.ok()) {
    agent::PutFileRequest last;
    last.set_sha256(sha);
    writer->Write(last);
  }
  // Without the checksum the agent refuses the file: a local read error
  // cannot leave a truncated copy behind.
  writer->WritesDone();
  absl::Status s = Traits::ToStatus(writer->Finish());
  if (!local_error.ok()) return local_error;
  if (!s.ok()) return s;
  if (response.sha256() != sha || response.size() != done) {
    return absl::DataLossError("the guest acknowledged different content");
  }
  return absl::OkStatus();
}

// Copies |remote| in the guest to the local file |local|.
template <typename Traits>
absl::Status GetFile(const Traits& traits, typename Traits::Stub& stub, const std::string& remote,
                     const std::string& local, const Progress& progress) {
  const std::string temp = local + ".vrpc-partial";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", temp));
  agent::GetFileRequest req;
  req.set_path(remote);
  req.set_chunk_size(kChunk);
  auto ctx = traits.NewContext();
  auto reader = stub.GetFile(ctx.get(), req);
  Sha256 hash;
  uint64_t done = 0;
  bool digest_seen = false;
  agent::FileDigest digest;
  absl::Status local_error;
  agent::GetFileResponse r;
  while (reader->Read(&r)) {
    if (r.has_digest()) {
      digest = r.digest();
      digest_seen = true;
      continue;
    }
    const std::string& d = r.data();
    size_t off = 0;
    while (off < d.size() && local_error.ok()) {
      const ssize_t n = ::write(fd, d.data() + off, d.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) local_error = absl::ErrnoToStatus(errno, absl::StrCat("writing ", temp));
      if (n > 0) off += static_cast<size_t>(n);
    }
    hash.Update(d);
    done += d.size();
    if (progress) progress(done, 0);
  }
  absl::Status s = Traits::ToStatus(reader->Finish());
  ::close(fd);
  auto fail = [&](absl::Status why) {
    ::unlink(temp.c_str());
    return why;
  };
  if (!s.ok()) return fail(s);
  if (!local_error.ok()) return fail(local_error);
  if (!digest_seen) return fail(absl::DataLossError("the transfer ended without its digest"));
  if (digest.size() != done || digest.sha256() != hash.Finish()) {
    return fail(absl::DataLossError(
        absl::StrCat("checksum mismatch: ", done, " bytes received, ", digest.size(), " sent")));
  }
  if (::rename(temp.c_str(), local.c_str()) != 0) {
    return fail(absl::ErrnoToStatus(errno, absl::StrCat("cannot rename to ", local)));
  }
  return absl::OkStatus();
}

}  // namespace agent_client
}  // namespace vrpc

#endif  // VRPC_HOST_AGENT_CLIENT_AGENT_OPS_H_
