#include "transport_vsock/protocol/credit.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/base/logging.h"

namespace vrpc {
namespace vsock {

CreditAccount::CreditAccount(uint32_t buf_alloc, uint32_t max_tx_window)
    : max_tx_window_(max_tx_window),
      buf_alloc_(buf_alloc),
      advertised_buf_alloc_(buf_alloc),
      max_advertised_buf_alloc_(buf_alloc) {}

absl::Status CreditAccount::OnPeerCredit(uint32_t peer_buf_alloc, uint32_t peer_fwd_cnt) {
  // Both differences are taken mod 2^32, so a counter that wrapped past 2^32
  // is handled and a value behind the old one shows up as a huge advance.
  const uint32_t advance = peer_fwd_cnt - peer_fwd_cnt_;
  if (advance > InFlight()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "peer fwd_cnt ", peer_fwd_cnt, " is outside [", peer_fwd_cnt_, ", ", tx_cnt_,
        "]: moved backwards or acknowledged bytes never sent"));
  }
  peer_fwd_cnt_ = peer_fwd_cnt;
  peer_buf_alloc_ = peer_buf_alloc;
  return absl::OkStatus();
}

uint32_t CreditAccount::PeerWindow() const {
  return std::min(peer_buf_alloc_, max_tx_window_);
}

uint32_t CreditAccount::PeerCredit() const {
  const uint32_t window = PeerWindow();
  const uint32_t in_flight = InFlight();
  return in_flight >= window ? 0 : window - in_flight;
}

void CreditAccount::OnSend(uint32_t n) {
  VRPC_CHECK(n <= PeerCredit()) << "sending " << n << " with credit " << PeerCredit();
  tx_cnt_ += n;
}

absl::Status CreditAccount::OnReceive(uint32_t len) {
  // What the peer may have in flight is bounded by what we told it: bytes
  // beyond our last advertised fwd_cnt can't exceed what we ever advertised.
  const uint64_t outstanding = static_cast<uint32_t>(rx_cnt_ - advertised_fwd_cnt_);
  const uint64_t limit = std::max(max_advertised_buf_alloc_, buf_alloc_);
  if (outstanding + len > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat("peer sent ", len, " bytes with ", outstanding, " of ", limit,
                     " credit already used: credit overrun"));
  }
  rx_cnt_ += len;
  if (len > 0) peer_waiting_ = false;
  return absl::OkStatus();
}

void CreditAccount::OnConsume(uint32_t n) {
  VRPC_CHECK(n <= Buffered()) << "consuming " << n << " of " << Buffered();
  fwd_cnt_ += n;
}

void CreditAccount::SetBufAlloc(uint32_t buf_alloc) { buf_alloc_ = buf_alloc; }

bool CreditAccount::ShouldAdvertise(uint32_t threshold, bool on_drain) const {
  const uint32_t unadvertised = fwd_cnt_ - advertised_fwd_cnt_;
  if (buf_alloc_ != advertised_buf_alloc_) return true;
  if (unadvertised == 0) return false;
  if (unadvertised >= std::min(threshold, std::max<uint32_t>(buf_alloc_ / 2, 1))) return true;
  return (peer_waiting_ || on_drain) && Buffered() == 0;
}

void CreditAccount::MarkAdvertised() {
  advertised_fwd_cnt_ = fwd_cnt_;
  advertised_buf_alloc_ = buf_alloc_;
  max_advertised_buf_alloc_ = std::max(max_advertised_buf_alloc_, buf_alloc_);
}

CreditSnapshot CreditAccount::Snapshot() const {
  CreditSnapshot s;
  s.peer_buf_alloc = peer_buf_alloc_;
  s.peer_fwd_cnt = peer_fwd_cnt_;
  s.tx_cnt = tx_cnt_;
  s.peer_credit = PeerCredit();
  s.buf_alloc = buf_alloc_;
  s.fwd_cnt = fwd_cnt_;
  s.rx_cnt = rx_cnt_;
  s.buffered = Buffered();
  return s;
}

}  // namespace vsock
}  // namespace vrpc
