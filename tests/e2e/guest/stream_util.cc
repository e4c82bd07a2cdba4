#include "tests/e2e/guest/stream_util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vrpc {
namespace e2e {

uint8_t PatternByte(uint64_t seed, uint64_t offset) {
  // splitmix64 of (seed, offset / 8), one byte per offset.
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + (offset >> 3) + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<uint8_t>(z >> ((offset & 7) * 8));
}

void FillPattern(uint64_t seed, uint64_t offset, void* buf, size_t len) {
  uint8_t* p = static_cast<uint8_t*>(buf);
  for (size_t i = 0; i < len; ++i) p[i] = PatternByte(seed, offset + i);
}

int64_t VerifyPattern(uint64_t seed, uint64_t offset, const void* buf, size_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(buf);
  for (size_t i = 0; i < len; ++i) {
    if (p[i] != PatternByte(seed, offset + i)) return static_cast<int64_t>(offset + i);
  }
  return -1;
}

int WriteFully(int fd, const void* buf, size_t len) {
  struct stat st;
  const bool is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = is_socket ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

int SendPattern(int fd, uint64_t seed, uint64_t total, size_t chunk) {
  std::vector<uint8_t> buf(chunk);
  uint64_t sent = 0;
  while (sent < total) {
    size_t n = total - sent < chunk ? static_cast<size_t>(total - sent) : chunk;
    FillPattern(seed, sent, buf.data(), n);
    if (WriteFully(fd, buf.data(), n) != 0) return -1;
    sent += n;
  }
  return 0;
}

ReceiveResult ReceivePattern(int fd, uint64_t seed, uint64_t limit, size_t chunk) {
  ReceiveResult r;
  std::vector<uint8_t> buf(chunk);
  for (;;) {
    size_t want = chunk;
    if (limit != 0) {
      if (r.received >= limit) break;
      if (limit - r.received < want) want = static_cast<size_t>(limit - r.received);
    }
    ssize_t n = read(fd, buf.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      r.error = errno;
      break;
    }
    if (n == 0) {
      r.eof = true;
      break;
    }
    if (r.first_mismatch < 0) {
      r.first_mismatch = VerifyPattern(seed, r.received, buf.data(), static_cast<size_t>(n));
    }
    r.received += static_cast<uint64_t>(n);
  }
  return r;
}

double NowSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string ErrnoString(int err) {
  return std::to_string(err) + " (" + strerror(err) + ")";
}

}  // namespace e2e
}  // namespace vrpc
