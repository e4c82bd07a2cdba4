#include "tests/virtio_user/guest_actors.h"

#include <algorithm>
#include <utility>

#include "transport_vsock/driver/probe_echo.h"

namespace vrpc {
namespace virtio_user_test {
namespace {

using transport::ConnectionEvent;
using transport::ConnectionEventType;

constexpr size_t kChunk = 256 * 1024;

// A chunk of the pattern at |offset| in the connection's write buffers.
Slice PatternChunk(transport::Connection& conn, uint64_t offset, size_t n) {
  uint8_t* data = nullptr;
  Slice s = conn.AllocateWriteBuffer(n, &data);
  vsock::ProbePatternFill(offset, data, n);
  return s;
}

}  // namespace

PatternReader::PatternReader(std::unique_ptr<transport::Connection> conn, uint64_t reply,
                             bool paused)
    : conn_(std::move(conn)), reply_(reply), paused_(paused) {
  conn_->SetEventHandler([this](const ConnectionEvent& e) { OnEvent(e); });
  Pump();
}

void PatternReader::Resume() {
  paused_ = false;
  Pump();
}

void PatternReader::OnEvent(const ConnectionEvent& e) {
  if (e.type == ConnectionEventType::kClosed) closed_ = e.status;
  Pump();
  if (e.type == ConnectionEventType::kClosed) done_ = true;
}

void PatternReader::Pump() {
  if (paused_ || done_) return;
  for (;;) {
    auto data = conn_->Read(1 << 20);
    if (!data.ok() || data->empty()) break;
    if (first_ == absl::InfinitePast()) first_ = absl::Now();
    last_ = absl::Now();
    uint64_t at = received_;
    uint64_t bad = 0;
    for (const Slice& s : data->slices()) {
      bad += vsock::ProbePatternMismatches(at, s.data(), s.size());
      at += s.size();
    }
    mismatches_ += bad;
    received_ = at;
  }
  if (conn_->state() == transport::ConnectionState::kClosed) return;
  if (!eof_ && conn_->AtEof()) eof_ = true;
  if (!eof_) return;
  // The reply, then our EOF.
  while (replied_ < reply_ || !pending_.empty()) {
    if (pending_.empty()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, reply_ - replied_));
      pending_.Append(PatternChunk(*conn_, replied_, n));
      replied_ += n;
    }
    auto w = conn_->Write(pending_);
    if (!w.ok() || !pending_.empty()) return;
  }
  (void)conn_->ShutdownWrite();
}

PatternWriter::PatternWriter(std::unique_ptr<transport::Connection> conn, uint64_t bytes)
    : conn_(std::move(conn)), bytes_(bytes) {
  conn_->SetEventHandler([this](const ConnectionEvent& e) { OnEvent(e); });
  if (conn_->state() == transport::ConnectionState::kOpen) Pump();
}

void PatternWriter::OnEvent(const ConnectionEvent& e) {
  switch (e.type) {
    case ConnectionEventType::kCreditBlocked:
      credit_when_blocked_ = conn_->credit().peer_credit;
      blocked_seen_ = true;
      return;
    case ConnectionEventType::kWritable:
      writable_seen_ = true;
      return Pump();
    case ConnectionEventType::kConnected:
      return Pump();
    case ConnectionEventType::kReadable:
      (void)conn_->Read(1 << 20);  // the peer's reply is not checked here
      return;
    default:
      return;
  }
}

void PatternWriter::Pump() {
  while (generated_ < bytes_ || !pending_.empty()) {
    if (pending_.empty()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes_ - generated_));
      pending_.Append(PatternChunk(*conn_, generated_, n));
      generated_ += n;
    }
    auto w = conn_->Write(pending_);
    if (!w.ok()) return;
    written_ += *w;
    if (!pending_.empty()) return;  // blocked: kWritable resumes
  }
  if (!finished_) {
    finished_ = true;
    (void)conn_->ShutdownWrite();
  }
}

}  // namespace virtio_user_test
}  // namespace vrpc
