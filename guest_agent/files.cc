// File: guest_agent/files.cc
//
// PutFile, GetFile, Stat, List. Paths must be absolute. PutFile writes a
// temporary file beside the target and renames it into place only after
// the whole content arrived within the size limit and its SHA-256 matched:
// a failed or interrupted transfer leaves nothing behind.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/sha256.h"
#include "core/base/unique_fd.h"
#include "guest_agent/agent_service.h"

namespace vrpc {
namespace guest_agent {
namespace {

constexpr uint32_t kDefaultChunk = 64 * 1024;
constexpr uint32_t kMaxChunk = 1 << 20;

absl::Status CheckPath(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("path \"", path, "\" is not absolute"));
  }
  if (path.find('\0') != std::string::npos || path.size() > 4096) {
    return absl::InvalidArgumentError("bad path");
  }
  return absl::OkStatus();
}

absl::Status Errno(int err, const std::string& what) { return absl::ErrnoToStatus(err, what); }

agent::FileType TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return agent::FILE_TYPE_REGULAR;
  if (S_ISDIR(mode)) return agent::FILE_TYPE_DIRECTORY;
  if (S_ISLNK(mode)) return agent::FILE_TYPE_SYMLINK;
  return agent::FILE_TYPE_OTHER;
}

void Fill(const std::string& name, const struct stat& st, agent::FileInfo* info) {
  info->set_name(name);
  info->set_type(TypeOf(st.st_mode));
  info->set_size(static_cast<uint64_t>(st.st_size));
  info->set_mode(st.st_mode & 07777);
  info->set_mtime_unix_nanos(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                             st.st_mtim.tv_nsec);
}

// Removes the temporary file unless released.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace

absl::Status AgentService::PutFile(rpc::ServerContext* context,
                                   rpc::ServerReader<agent::PutFileRequest>* reader,
                                   agent::PutFileResponse* response) {
  agent::PutFileRequest req;
  if (!reader->Read(&req) || !req.has_start()) {
    return absl::InvalidArgumentError("the first PutFile request must carry PutFileStart");
  }
  const agent::PutFileStart start = req.start();
  if (absl::Status s = CheckPath(start.path()); !s.ok()) return s;
  const uint64_t limit = options_.limits.max_file_bytes;
  if (start.size() > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a file of ", start.size(), " bytes is over the limit of ", limit));
  }
  const size_t slash = start.path().rfind('/');
  const std::string dir = slash == 0 ? "/" : start.path().substr(0, slash);
  const std::string name = start.path().substr(slash + 1);
  if (name.empty()) return absl::InvalidArgumentError("the path names a directory");
  const std::string temp_path = absl::StrCat(dir, dir == "/" ? "" : "/", ".", name, ".vrpc-XXXXXX");
  std::vector<char> templ(temp_path.begin(), temp_path.end());
  templ.push_back('\0');
  UniqueFd fd(::mkostemp(templ.data(), O_CLOEXEC));
  if (fd.get() < 0) return Errno(errno, absl::StrCat("cannot create a file in ", dir));
  TempFile temp(templ.data());
  const mode_t mode = start.mode() != 0 ? (start.mode() & 07777) : 0644;
  if (::fchmod(fd.get(), mode) != 0) return Errno(errno, "fchmod");

  Sha256 hash;
  uint64_t size = 0;
  std::string want_sha;
  bool got_sha = false;
  while (reader->Read(&req)) {
    if (got_sha) return absl::InvalidArgumentError("data after the checksum");
    if (req.has_data()) {
      const std::string& d = req.data();
      if (size + d.size() > limit) {
        return absl::ResourceExhaustedError(
            absl::StrCat("the file grew over the limit of ", limit, " bytes"));
      }
      size_t off = 0;
      while (off < d.size()) {
        ssize_t n = ::write(fd.get(), d.data() + off, d.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Errno(errno, absl::StrCat("writing ", start.path()));
        off += static_cast<size_t>(n);
      }
      hash.Update(d);
      size += d.size();
    } else if (req.has_sha256()) {
      want_sha = req.sha256();
      got_sha = true;
    } else {
      return absl::InvalidArgumentError("a PutFile request without data or checksum");
    }
  }
  if (context->IsCancelled()) return absl::CancelledError("the transfer was cancelled");
  if (reader->bad()) return absl::InvalidArgumentError("could not parse a PutFile request");
  if (!got_sha) return absl::InvalidArgumentError("the transfer ended without its SHA-256");
  const std::string sha = hash.Finish();
  if (want_sha != sha) {
    return absl::DataLossError(absl::StrCat("checksum mismatch: got ", Sha256::Hex(sha), " for ",
                                            size, " bytes, the client sent ",
                                            Sha256::Hex(want_sha)));
  }
  if (::fsync(fd.get()) != 0) return Errno(errno, "fsync");
  fd.Reset();
  if (start.overwrite()) {
    if (::rename(templ.data(), start.path().c_str()) != 0) {
      return Errno(errno, absl::StrCat("cannot replace ", start.path()));
    }
  } else if (::renameat2(AT_FDCWD, templ.data(), AT_FDCWD, start.path().c_str(),
                         RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat(start.path(), " exists (set overwrite to replace it)"));
    }
    return Errno(errno, absl::StrCat("cannot create ", start.path()));
  }
  temp.Release();
  response->set_size(size);
  response->set_sha256(sha);
  return absl::OkStatus();
}

absl::Status AgentService::GetFile(rpc::ServerContext* context,
                                   const agent::GetFileRequest* request,
                                   rpc::ServerWriter<agent::GetFileResponse>* writer) {
  if (absl::Status s = CheckPath(request->path()); !s.ok()) return s;
  UniqueFd fd(::open(request->path().c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno(errno, absl::StrCat("cannot open ", request->path()));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno(errno, "fstat");
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(request->path(), " is not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > options_.limits.max_file_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(request->path(), " has ", st.st_size,
                                                     " bytes, over the limit of ",
                                                     options_.limits.max_file_bytes));
  }
  uint32_t chunk = request->chunk_size() == 0 ? kDefaultChunk : request->chunk_size();
  chunk = std::min<uint32_t>({chunk, kMaxChunk,
                              static_cast<uint32_t>(options_.limits.max_message_bytes - 64)});
  Sha256 hash;
  uint64_t size = 0;
  agent::GetFileResponse r;
  std::string* data = r.mutable_data();
  for (;;) {
    if (context->IsCancelled()) return absl::CancelledError("the transfer was cancelled");
    data->resize(chunk);
    ssize_t n = ::read(fd.get(), data->data(), chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, absl::StrCat("reading ", request->path()));
    if (n == 0) break;
    data->resize(static_cast<size_t>(n));
    hash.Update(*data);
    size += static_cast<uint64_t>(n);
    if (size > options_.limits.max_file_bytes) {
      return absl::ResourceExhaustedError("the file grew over the limit while being read");
    }
    if (!writer->Write(r)) return absl::CancelledError("the client went away");
  }
  agent::GetFileResponse last;
  last.mutable_digest()->set_size(size);
  last.mutable_digest()->set_sha256(hash.Finish());
  if (!writer->Write(last)) return absl::CancelledError("the client went away");
  return absl::OkStatus();
}

absl::Status AgentService::Stat(rpc::ServerContext* context, const agent::StatRequest* request,
                                agent::FileInfo* response) {
  if (absl::Status s = CheckPath(request->path()); !s.ok()) return s;
  struct stat st;
  if (::lstat(request->path().c_str(), &st) != 0) {
    return Errno(errno, absl::StrCat("stat ", request->path()));
  }
  const size_t slash = request->path().rfind('/');
  Fill(request->path().substr(slash + 1), st, response);
  return absl::OkStatus();
}

absl::Status AgentService::List(rpc::ServerContext* context, const agent::ListRequest* request,
                                agent::ListResponse* response) {
  if (absl::Status s = CheckPath(request->path()); !s.ok()) return s;
  UniqueFd dfd(::open(request->path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return Errno(errno, absl::StrCat("cannot open ", request->path()));
  DIR* dir = ::fdopendir(dfd.get());
  if (dir == nullptr) return Errno(errno, "fdopendir");
  (void)dfd.Release();  // the DIR owns it
  std::vector<agent::FileInfo> entries;
  bool truncated = false;
  while (struct dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (entries.size() >= options_.limits.max_list_entries) {
      truncated = true;
      break;
    }
    struct stat st;
    if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    Fill(name, st, &entries.emplace_back());
  }
  ::closedir(dir);
  std::sort(entries.begin(), entries.end(),
            [](const agent::FileInfo& a, const agent::FileInfo& b) { return a.name() < b.name(); });
  for (agent::FileInfo& e : entries) *response->add_entries() = std::move(e);
  response->set_truncated(truncated);
  return absl::OkStatus();
}

}  // namespace guest_agent
}  // namespace vrpc
