// File: transport_vsock/device/connect_line.h
//
// The hybrid-vsock handshake of Firecracker and vhost-device-vsock: a host
// client connects to the VM's Unix socket and writes "CONNECT <port>\n"; on
// success the device answers "OK <port>\n" and the socket becomes a byte
// stream to guest port <port>; on failure the socket is closed. Pure parsing.
#ifndef VRPC_TRANSPORT_VSOCK_DEVICE_CONNECT_LINE_H_
#define VRPC_TRANSPORT_VSOCK_DEVICE_CONNECT_LINE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vrpc {
namespace vsock {

// The longest handshake line accepted, newline included.
inline constexpr size_t kMaxConnectLine = 64;

// Parses one line without its '\n' (a trailing '\r' is tolerated):
// "CONNECT <decimal port>", the keyword in any case, one space. Returns the
// port; kInvalidArgument for anything else, including ports >= 0xffffffff.
absl::StatusOr<uint32_t> ParseConnectLine(absl::string_view line);

// "OK <port>\n".
std::string FormatOkLine(uint32_t port);

// Collects bytes until the first '\n'. Not thread-safe.
class LineReader {
 public:
  // Appends up to the first '\n' of |bytes|. Returns the line (without '\n')
  // once complete, nullopt while incomplete; kInvalidArgument once the line
  // exceeds kMaxConnectLine. |*consumed| is set to the bytes used; bytes after
  // the newline are the caller's (the start of the stream).
  absl::StatusOr<std::optional<std::string>> Feed(absl::string_view bytes, size_t* consumed);

 private:
  std::string line_;
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_DEVICE_CONNECT_LINE_H_
