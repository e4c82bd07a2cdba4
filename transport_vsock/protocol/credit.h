// File: transport_vsock/protocol/credit.h
//
// CreditAccount: virtio-vsock stream flow control for one connection
// (VIRTIO 1.2 §5.10.6.3), kept in wrapping uint32 counters and hostile-peer
// safe (HARDENING.md rows 8 and 9).
//
// Our receive side:  buf_alloc (what we advertise), rx_cnt (payload bytes
// received), fwd_cnt (bytes the application consumed). Every packet we send
// carries buf_alloc and fwd_cnt; MarkAdvertised() records that.
// The peer's side:   peer_buf_alloc and peer_fwd_cnt (from its headers) and
// our tx_cnt (payload bytes sent). The credit we may still use is
//
//     in_flight = tx_cnt - peer_fwd_cnt            (mod 2^32)
//     credit    = window > in_flight ? window - in_flight : 0
//     window    = min(peer_buf_alloc, max_tx_window)
//
// so a peer that shrinks buf_alloc with bytes in flight yields 0, never a
// wrapped huge value (CVE-2026-23069).
//
// Not thread-safe.
#ifndef VRPC_TRANSPORT_VSOCK_PROTOCOL_CREDIT_H_
#define VRPC_TRANSPORT_VSOCK_PROTOCOL_CREDIT_H_

#include <cstdint>

#include "absl/status/status.h"

namespace vrpc {
namespace vsock {

// A point-in-time copy of a connection's credit counters.
struct CreditSnapshot {
  uint32_t peer_buf_alloc = 0;
  uint32_t peer_fwd_cnt = 0;
  uint32_t tx_cnt = 0;
  uint32_t peer_credit = 0;  // what we may send right now
  uint32_t buf_alloc = 0;
  uint32_t fwd_cnt = 0;
  uint32_t rx_cnt = 0;
  uint32_t buffered = 0;  // received, not yet consumed
};

class CreditAccount {
 public:
  // |buf_alloc|: our receive buffer, advertised to the peer.
  // |max_tx_window|: the most we keep in flight whatever the peer offers.
  CreditAccount(uint32_t buf_alloc, uint32_t max_tx_window);

  // ---- Peer side ----

  // Applies the buf_alloc / fwd_cnt carried by a packet from the peer.
  // Returns kInvalidArgument (a protocol violation: reset the connection) if
  // fwd_cnt moves backwards or past tx_cnt; the account is then unchanged.
  // A shrinking buf_alloc is legal.
  [[nodiscard]] absl::Status OnPeerCredit(uint32_t peer_buf_alloc, uint32_t peer_fwd_cnt);

  // Bytes we may send now (saturating, see file comment).
  uint32_t PeerCredit() const;
  // The peer's window as we may use it: min(peer_buf_alloc, max_tx_window).
  uint32_t PeerWindow() const;
  uint32_t InFlight() const { return tx_cnt_ - peer_fwd_cnt_; }

  // Records |n| payload bytes sent. Precondition (CHECKed): n <= PeerCredit().
  void OnSend(uint32_t n);

  // ---- Our side ----

  // Records |len| payload bytes received. Returns kResourceExhausted (reset
  // the connection) if they exceed the credit we granted: the bytes already
  // unconsumed as of our last advertisement plus |len| may not exceed the
  // largest buf_alloc we ever advertised. The account is then unchanged.
  [[nodiscard]] absl::Status OnReceive(uint32_t len);

  // Records |n| bytes consumed by the application.
  // Precondition (CHECKed): n <= Buffered().
  void OnConsume(uint32_t n);

  // Changes the buffer we advertise (SO_VM_SOCKETS_BUFFER_SIZE).
  void SetBufAlloc(uint32_t buf_alloc);

  // Records the peer's OP_CREDIT_REQUEST: it waits for more credit than it
  // has (our own SEQPACKET sender wants room for a whole message). Until it
  // sends data again, draining the receive queue advertises.
  void OnCreditRequest() { peer_waiting_ = true; }

  // True when the peer should be told about consumed bytes:
  //   - buf_alloc changed;
  //   - at least min(|threshold|, buf_alloc / 2) bytes consumed since the
  //     last advertisement. A sender blocked at zero credit has a whole
  //     buf_alloc unadvertised once we drain, so it always learns (also with
  //     a buf_alloc below |threshold|, vsock_test 23);
  //   - the receive queue drained while the peer waits (OnCreditRequest),
  //     or with |on_drain| (EngineConfig::credit_update_on_drain).
  // Otherwise a drained queue does not advertise: the next packet we send
  // for any reason carries fwd_cnt, so a request/response exchange needs no
  // OP_CREDIT_UPDATE at all (Linux's rule is lazier still: it waits until
  // the peer may have less than 64 KiB left).
  bool ShouldAdvertise(uint32_t threshold, bool on_drain = false) const;

  // Records that a packet carrying buf_alloc() and fwd_cnt() was sent.
  void MarkAdvertised();

  uint32_t buf_alloc() const { return buf_alloc_; }
  uint32_t fwd_cnt() const { return fwd_cnt_; }
  uint32_t Buffered() const { return rx_cnt_ - fwd_cnt_; }

  CreditSnapshot Snapshot() const;

 private:
  // Peer side.
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;
  uint32_t tx_cnt_ = 0;
  const uint32_t max_tx_window_;
  // Our side.
  uint32_t buf_alloc_;
  uint32_t rx_cnt_ = 0;
  uint32_t fwd_cnt_ = 0;
  uint32_t advertised_fwd_cnt_ = 0;
  uint32_t advertised_buf_alloc_;
  uint32_t max_advertised_buf_alloc_;
  bool peer_waiting_ = false;  // OnCreditRequest, until the peer sends data
};

}  // namespace vsock
}  // namespace vrpc

#endif  // VRPC_TRANSPORT_VSOCK_PROTOCOL_CREDIT_H_
