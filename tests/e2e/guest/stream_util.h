// File: tests/e2e/guest/stream_util.h
//
// Plain-libc helpers for programs that move verifiable byte streams over
// sockets: inside QEMU guests (AF_VSOCK, static, no Abseil) and on the host
// side of end-to-end tests (Unix sockets of the hybrid vsock protocol). No
// dependencies beyond libc and the C++ standard library, so it links into
// fully static guest binaries.
#ifndef VRPC_TESTS_E2E_GUEST_STREAM_UTIL_H_
#define VRPC_TESTS_E2E_GUEST_STREAM_UTIL_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace vrpc {
namespace e2e {

// The byte at stream offset |offset| of the deterministic test stream
// |seed|. Different seeds give different streams, so a stream delivered to
// the wrong connection, or shifted, or with a chunk lost or repeated, fails
// verification.
uint8_t PatternByte(uint64_t seed, uint64_t offset);

// Fills |len| bytes of |buf| with stream |seed| starting at |offset|.
void FillPattern(uint64_t seed, uint64_t offset, void* buf, size_t len);

// Checks |len| bytes of |buf| against stream |seed| at |offset|. Returns -1
// if they match, else the stream offset of the first mismatch.
int64_t VerifyPattern(uint64_t seed, uint64_t offset, const void* buf, size_t len);

// Writes all of |len| bytes (retrying on EINTR and short writes; uses
// send(MSG_NOSIGNAL) on sockets, so a closed peer gives EPIPE rather than
// SIGPIPE). Returns 0, or -1 with errno set.
int WriteFully(int fd, const void* buf, size_t len);

// Sends |total| bytes of stream |seed| in chunks of at most |chunk| bytes.
// Returns 0, or -1 with errno set.
int SendPattern(int fd, uint64_t seed, uint64_t total, size_t chunk = 64 * 1024);

// Result of ReceivePattern.
struct ReceiveResult {
  uint64_t received = 0;       // bytes read before EOF/error/limit
  int64_t first_mismatch = -1;  // stream offset, or -1
  int error = 0;               // errno of a failed read, or 0
  bool eof = false;            // read() returned 0
};

// Reads from |fd| until EOF (or an error, or |limit| bytes if limit != 0),
// verifying stream |seed|.
ReceiveResult ReceivePattern(int fd, uint64_t seed, uint64_t limit = 0,
                             size_t chunk = 64 * 1024);

// Monotonic clock in seconds.
double NowSeconds();

// "%d: %s" of errno values, for messages.
std::string ErrnoString(int err);

}  // namespace e2e
}  // namespace vrpc

#endif  // VRPC_TESTS_E2E_GUEST_STREAM_UTIL_H_
