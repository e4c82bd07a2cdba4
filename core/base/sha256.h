// File: core/base/sha256.h
//
// Sha256: an incremental SHA-256 (OpenSSL's libcrypto underneath), for the
// checksums of transferred files.
#ifndef VRPC_CORE_BASE_SHA256_H_
#define VRPC_CORE_BASE_SHA256_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace vrpc {

class Sha256 {
 public:
  static constexpr size_t kSize = 32;

  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // The digest of everything so far, as 32 raw bytes. The object may not be
  // updated afterwards.
  std::string Finish();

  // The digest of |data| (32 raw bytes).
  static std::string Of(absl::string_view data);
  // Lowercase hex of raw bytes.
  static std::string Hex(absl::string_view digest);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vrpc

#endif  // VRPC_CORE_BASE_SHA256_H_
