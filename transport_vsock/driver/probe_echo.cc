#include "transport_vsock/driver/probe_echo.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace vsock {
namespace {

using transport::ConnectionEvent;
using transport::ConnectionEventType;

// A prime period, so the pattern never lines up with buffer sizes.
constexpr size_t kPeriod = 65521;
constexpr size_t kWriteChunk = 256 * 1024;
constexpr size_t kReadChunk = 1 << 20;

const std::array<uint8_t, kPeriod>& Table() {
  static const std::array<uint8_t, kPeriod> table = [] {
    std::array<uint8_t, kPeriod> t{};
    uint32_t x = 0x2545f491u;
    for (uint8_t& b : t) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      b = static_cast<uint8_t>(x);
    }
    return t;
  }();
  return table;
}

void Fill(uint64_t offset, uint8_t* out, size_t n) {
  size_t pos = offset % kPeriod;
  while (n > 0) {
    const size_t k = std::min(n, kPeriod - pos);
    std::memcpy(out, Table().data() + pos, k);
    out += k;
    n -= k;
    pos = 0;
  }
}

// The index of the first byte of |in| that differs from the pattern at
// |offset|, or |n|.
size_t Check(uint64_t offset, const uint8_t* in, size_t n) {
  size_t pos = offset % kPeriod;
  size_t done = 0;
  while (done < n) {
    const size_t k = std::min(n - done, kPeriod - pos);
    if (std::memcmp(in + done, Table().data() + pos, k) != 0) {
      for (size_t i = 0; i < k; ++i) {
        if (in[done + i] != Table()[pos + i]) return done + i;
      }
    }
    done += k;
    pos = 0;
  }
  return n;
}

}  // namespace

uint8_t ProbePatternByte(uint64_t i) { return Table()[i % kPeriod]; }

void ProbePatternFill(uint64_t offset, uint8_t* out, size_t n) { Fill(offset, out, n); }

uint64_t ProbePatternMismatches(uint64_t offset, const uint8_t* data, size_t n) {
  uint64_t bad = 0;
  for (size_t at = 0; at < n;) {
    const size_t first = Check(offset + at, data + at, n - at);
    if (first == n - at) break;
    ++bad;
    at += first + 1;
  }
  return bad;
}

// ---------------------------------------------------------------------------
// EchoClient

EchoClient::EchoClient(transport::Connector& connector, uint64_t bytes, Done done)
    : bytes_(bytes), done_(std::move(done)), start_(absl::Now()) {
  absl::StatusOr<std::unique_ptr<transport::Connection>> conn = connector.Connect();
  if (!conn.ok()) {
    connector.reactor().Post([this, s = conn.status()] { Finish(s); });
    return;
  }
  conn_ = *std::move(conn);
  conn_->SetEventHandler([this](const ConnectionEvent& e) { OnEvent(e); });
}

void EchoClient::OnEvent(const ConnectionEvent& e) {
  switch (e.type) {
    case ConnectionEventType::kConnected:
      start_ = absl::Now();
      return Send();
    case ConnectionEventType::kWritable:
      return Send();
    case ConnectionEventType::kReadable:
    case ConnectionEventType::kPeerShutdown:
      return Receive();
    case ConnectionEventType::kClosed:
      Receive();
      if (received_ < bytes_) {
        Finish(absl::DataLossError(absl::StrCat("connection closed (", e.status.ToString(),
                                                ") after ", received_, " of ", bytes_,
                                                " bytes echoed")));
      }
      return;
    default:
      return;
  }
}

void EchoClient::Send() {
  while (!finished_ && (generated_ < bytes_ || !pending_.empty())) {
    if (pending_.empty()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kWriteChunk, bytes_ - generated_));
      uint8_t* data = nullptr;
      Slice chunk = conn_->AllocateWriteBuffer(n, &data);  // serialize in place
      Fill(generated_, data, n);
      pending_.Append(std::move(chunk));
      generated_ += n;
    }
    absl::StatusOr<size_t> sent = conn_->Write(pending_);
    if (!sent.ok()) return Finish(sent.status());
    if (!pending_.empty()) return;  // the peer's window is full: kWritable
  }
  if (!finished_ && !shut_) {
    shut_ = true;
    if (absl::Status s = conn_->ShutdownWrite(); !s.ok()) Finish(s);
  }
}

void EchoClient::Receive() {
  while (!finished_) {
    absl::StatusOr<SliceChain> data = conn_->Read(kReadChunk);
    if (!data.ok()) return Finish(data.status());
    if (data->empty()) return;
    for (const Slice& s : data->slices()) {
      const size_t bad = Check(received_, s.data(), s.size());
      if (bad != s.size() || received_ + s.size() > bytes_) {
        return Finish(absl::DataLossError(
            absl::StrCat("echo differs from what was sent at offset ", received_ + bad)));
      }
      received_ += s.size();
    }
    if (received_ == bytes_) return Finish(absl::OkStatus());
  }
}

void EchoClient::Finish(absl::Status status) {
  if (finished_) return;
  finished_ = true;
  end_ = absl::Now();
  done_(std::move(status));
}

// ---------------------------------------------------------------------------
// EchoServer

EchoServer::EchoServer(std::unique_ptr<transport::Listener> listener, uint64_t count, Done done)
    : listener_(std::move(listener)), count_(count), done_(std::move(done)) {
  listener_->SetAcceptHandler(
      [this](std::unique_ptr<transport::Connection> c) { Accept(std::move(c)); });
}

void EchoServer::Accept(std::unique_ptr<transport::Connection> conn) {
  auto echo = std::make_unique<Echo>();
  Echo* e = echo.get();
  echo->conn = std::move(conn);
  echoes_[e] = std::move(echo);
  e->conn->SetEventHandler([this, e](const ConnectionEvent& ev) { OnEvent(e, ev); });
  Pump(*e);
}

void EchoServer::OnEvent(Echo* echo, const ConnectionEvent& e) {
  if (e.type != ConnectionEventType::kClosed) return Pump(*echo);
  Pump(*echo);  // what arrived before the close
  if (!echoes_.contains(echo)) return;
  End(echo, echo->shut ? absl::OkStatus()
                       : absl::UnavailableError(absl::StrCat(
                             "connection ended before the peer's EOF: ", e.status.ToString())));
}

void EchoServer::Pump(Echo& echo) {
  for (;;) {
    if (!echo.pending.empty()) {
      absl::StatusOr<size_t> sent = echo.conn->Write(echo.pending);
      if (!sent.ok()) {
        if (echo.conn->state() != transport::ConnectionState::kClosed) End(&echo, sent.status());
        return;
      }
      if (!echo.pending.empty()) return;  // wait for kWritable
    }
    absl::StatusOr<SliceChain> data = echo.conn->Read(kWriteChunk);
    if (!data.ok()) return;
    if (data->empty()) {
      if (echo.conn->AtEof() && !echo.shut) {
        echo.shut = true;
        (void)echo.conn->ShutdownWrite();
      }
      return;
    }
    echoed_ += data->size();
    echo.pending = *std::move(data);
  }
}

void EchoServer::End(Echo* echo, absl::Status status) {
  if (!status.ok() && first_error_.ok()) first_error_ = status;
  echoes_.erase(echo);  // destroys the connection (allowed from its handler)
  if (++ended_ == count_) done_(first_error_);
}

}  // namespace vsock
}  // namespace vrpc
