// File: tests/e2e/harness/cpio.h
//
// CpioWriter writes a "newc" (SVR4, magic 070701) cpio archive, the format the
// Linux kernel unpacks as an initramfs. Writing the archive in-process (instead
// of running `find | cpio -o`) means no root privileges are needed for device
// nodes such as /dev/console, ownership is root:root regardless of who runs
// the test, and the output is reproducible (all mtimes are 0).
#ifndef VRPC_TESTS_E2E_HARNESS_CPIO_H_
#define VRPC_TESTS_E2E_HARNESS_CPIO_H_

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vrpc {
namespace e2e {

// Accumulates an archive in memory. Paths are absolute ("/bin/sh") or
// relative to the archive root ("bin/sh"); they are stored without the
// leading '/'. Missing parent directories are added automatically (mode
// 0755) before an entry, because the kernel's unpacker does not create them.
// Adding the same path twice adds two entries (the later one wins when the
// kernel unpacks). Not thread-safe.
class CpioWriter {
 public:
  CpioWriter() = default;
  CpioWriter(const CpioWriter&) = delete;
  CpioWriter& operator=(const CpioWriter&) = delete;

  // |mode| holds permission bits only (e.g. 0755).
  void AddDirectory(absl::string_view path, uint32_t mode = 0755);
  void AddFile(absl::string_view path, absl::string_view contents,
               uint32_t mode = 0644);
  void AddSymlink(absl::string_view path, absl::string_view target);
  void AddCharDevice(absl::string_view path, uint32_t major, uint32_t minor,
                     uint32_t mode = 0600);

  // True if |path| was added (as any kind of entry, or as an implicit parent).
  bool Contains(absl::string_view path) const;

  // Appends the trailer (once) and returns the archive. The writer must not
  // be used afterwards.
  std::string Finish();

  // Bytes written so far.
  size_t size() const { return out_.size(); }

 private:
  void AddParents(const std::string& path);
  void AddEntry(const std::string& path, uint32_t mode, absl::string_view data,
                uint32_t rdev_major = 0, uint32_t rdev_minor = 0);

  std::string out_;
  std::set<std::string> paths_;
  uint32_t next_ino_ = 1;
  bool finished_ = false;
};

}  // namespace e2e
}  // namespace vrpc

#endif  // VRPC_TESTS_E2E_HARNESS_CPIO_H_
