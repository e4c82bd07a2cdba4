#include "transport_vsock/kernel/internal/hybrid_reply.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"

namespace vrpc {
namespace kernel {
namespace internal {

namespace {

bool AllDigits(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string HybridConnectLine(uint32_t port) { return absl::StrCat("CONNECT ", port, "\n"); }

absl::StatusOr<HybridReply> ParseHybridReply(absl::string_view received) {
  const size_t nl = received.substr(0, kMaxHybridReplyLine).find('\n');
  if (nl == absl::string_view::npos) {
    if (received.size() >= kMaxHybridReplyLine) {
      return absl::UnavailableError(absl::StrCat(
          "hybrid vsock handshake: no newline in the first ", kMaxHybridReplyLine,
          " bytes of the reply (\"", absl::CEscape(received.substr(0, kMaxHybridReplyLine)),
          "\")"));
    }
    return HybridReply{};
  }
  absl::string_view line = received.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  absl::string_view number = line;
  uint32_t port = 0;
  // Plain decimal only: SimpleAtoi alone would take "+5" or " 5 ".
  const bool ok = absl::ConsumePrefix(&number, "OK ") && !number.empty() &&
                  number.size() <= 10 && AllDigits(number) && absl::SimpleAtoi(number, &port);
  if (!ok) {
    return absl::UnavailableError(absl::StrCat(
        "hybrid vsock handshake refused: expected \"OK <port>\", got \"", absl::CEscape(line),
        "\""));
  }
  return HybridReply{true, port, nl + 1};
}

}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
