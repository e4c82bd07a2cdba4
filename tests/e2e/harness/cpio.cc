#include "tests/e2e/harness/cpio.h"

#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace vrpc {
namespace e2e {
namespace {

std::string Normalize(absl::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

void Pad4(std::string& out) {
  while (out.size() % 4 != 0) out.push_back('\0');
}

}  // namespace

void CpioWriter::AddParents(const std::string& path) {
  for (size_t pos = path.find('/'); pos != std::string::npos;
       pos = path.find('/', pos + 1)) {
    std::string parent = path.substr(0, pos);
    if (paths_.count(parent) == 0) {
      AddEntry(parent, S_IFDIR | 0755, "");
    }
  }
}

void CpioWriter::AddEntry(const std::string& path, uint32_t mode,
                          absl::string_view data, uint32_t rdev_major,
                          uint32_t rdev_minor) {
  paths_.insert(path);
  const uint32_t nlink = S_ISDIR(mode) ? 2 : 1;
  char header[6 + 13 * 8 + 1];
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
  // rdevmajor, rdevminor, namesize (incl. NUL), check.
  std::snprintf(header, sizeof(header),
                "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
                next_ino_++, mode, 0u, 0u, nlink, 0u,
                static_cast<uint32_t>(data.size()), 0u, 0u, rdev_major,
                rdev_minor, static_cast<uint32_t>(path.size() + 1), 0u);
  out_.append(header, 6 + 13 * 8);
  out_.append(path);
  out_.push_back('\0');
  Pad4(out_);
  out_.append(data.data(), data.size());
  Pad4(out_);
}

void CpioWriter::AddDirectory(absl::string_view path, uint32_t mode) {
  std::string p = Normalize(path);
  if (p.empty() || paths_.count(p) != 0) return;
  AddParents(p);
  AddEntry(p, S_IFDIR | (mode & 07777), "");
}

void CpioWriter::AddFile(absl::string_view path, absl::string_view contents,
                         uint32_t mode) {
  std::string p = Normalize(path);
  AddParents(p);
  AddEntry(p, S_IFREG | (mode & 07777), contents);
}

void CpioWriter::AddSymlink(absl::string_view path, absl::string_view target) {
  std::string p = Normalize(path);
  AddParents(p);
  AddEntry(p, S_IFLNK | 0777, target);
}

void CpioWriter::AddCharDevice(absl::string_view path, uint32_t major,
                               uint32_t minor, uint32_t mode) {
  std::string p = Normalize(path);
  AddParents(p);
  AddEntry(p, S_IFCHR | (mode & 07777), "", major, minor);
}

bool CpioWriter::Contains(absl::string_view path) const {
  return paths_.count(Normalize(path)) != 0;
}

std::string CpioWriter::Finish() {
  if (!finished_) {
    finished_ = true;
    // The trailer entry has ino 0, mode 0 and nlink 1 in GNU cpio's output.
    next_ino_ = 0;
    const std::string trailer = "TRAILER!!!";
    char header[6 + 13 * 8 + 1];
    std::snprintf(header, sizeof(header),
                  "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
                  0u, 0u, 0u, 0u, 1u, 0u, 0u, 0u, 0u, 0u, 0u,
                  static_cast<uint32_t>(trailer.size() + 1), 0u);
    out_.append(header, 6 + 13 * 8);
    out_.append(trailer);
    out_.push_back('\0');
    Pad4(out_);
    // Pad to a 512-byte block like cpio(1) does (harmless for the kernel).
    while (out_.size() % 512 != 0) out_.push_back('\0');
  }
  return std::move(out_);
}

}  // namespace e2e
}  // namespace vrpc
