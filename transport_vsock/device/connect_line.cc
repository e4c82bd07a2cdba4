#include "transport_vsock/device/connect_line.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vrpc {
namespace vsock {

absl::StatusOr<uint32_t> ParseConnectLine(absl::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  constexpr absl::string_view kKeyword = "CONNECT ";
  if (line.size() <= kKeyword.size() ||
      !absl::EqualsIgnoreCase(line.substr(0, kKeyword.size()), kKeyword)) {
    return absl::InvalidArgumentError("expected \"CONNECT <port>\"");
  }
  absl::string_view digits = line.substr(kKeyword.size());
  if (digits.size() > 10) return absl::InvalidArgumentError("port too long");
  uint64_t port = 0;
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("port is not a decimal number");
    }
    port = port * 10 + static_cast<uint64_t>(c - '0');
  }
  if (port >= 0xffffffffu) return absl::InvalidArgumentError("port out of range");
  return static_cast<uint32_t>(port);
}

std::string FormatOkLine(uint32_t port) { return absl::StrCat("OK ", port, "\n"); }

absl::StatusOr<std::optional<std::string>> LineReader::Feed(absl::string_view bytes,
                                                            size_t* consumed) {
  const size_t newline = bytes.find('\n');
  const size_t take = newline == absl::string_view::npos ? bytes.size() : newline + 1;
  *consumed = take;
  if (line_.size() + take > kMaxConnectLine) {
    return absl::InvalidArgumentError("handshake line too long");
  }
  line_.append(bytes.data(), newline == absl::string_view::npos ? take : newline);
  if (newline == absl::string_view::npos) return std::optional<std::string>();
  std::string line = std::move(line_);
  line_.clear();
  return std::optional<std::string>(std::move(line));
}

}  // namespace vsock
}  // namespace vrpc
