// The SOCK_SEQPACKET record handling of the kernel socket transport
// (RxBuffer::RecvRecord, SocketConnection's record reads and writes) over
// AF_UNIX SOCK_SEQPACKET socketpairs: the same code AF_VSOCK SOCK_SEQPACKET
// runs in the guest (tests/kernel), exercised without opening AF_VSOCK on
// the host.
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "core/buffer/slice.h"
#include "core/io/manual_reactor.h"
#include "core/transport/connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/kernel/internal/rx_buffer.h"
#include "transport_vsock/kernel/internal/socket_connection.h"
#include "transport_vsock/kernel/options.h"

namespace vrpc {
namespace kernel {
namespace internal {
namespace {

using transport::Connection;
using transport::ConnectionEvent;
using transport::ConnectionState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using E = transport::ConnectionEventType;

constexpr size_t kMiB = 1 << 20;

uint8_t PatternByte(uint64_t i) { return static_cast<uint8_t>((i * 131) ^ (i >> 11)); }

std::string Pattern(uint64_t offset, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(PatternByte(offset + i));
  return out;
}

// A non-blocking AF_UNIX SOCK_SEQPACKET pair.
void SeqpacketPair(UniqueFd* a, UniqueFd* b) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  *a = UniqueFd(sv[0]);
  *b = UniqueFd(sv[1]);
}

void SendRecord(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

// ---------------------------------------------------------------------------
// RxBuffer::RecvRecord

class RecvRecordTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    SeqpacketPair(&ours_, &theirs_);
    if (!GetParam()) rx_.DisableRecordPeek();
  }
  UniqueFd ours_, theirs_;
  RxBuffer rx_{1 * kMiB, 4096};
};

TEST_P(RecvRecordTest, QueuesWholeRecordsLargerThanAChunk) {
  SendRecord(theirs_.get(), Pattern(0, 10000));  // > the 4 KiB chunk
  SendRecord(theirs_.get(), Pattern(10000, 1));
  RxBuffer::RecordResult r = rx_.RecvRecord(ours_.get(), 16384);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.n, 10000);
  r = rx_.RecvRecord(ours_.get(), 16384);
  EXPECT_EQ(r.n, 1);
  r = rx_.RecvRecord(ours_.get(), 16384);
  EXPECT_EQ(r.n, -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(rx_.Take(SIZE_MAX).ToString(), Pattern(0, 10001));
}

TEST_P(RecvRecordTest, EndOfStreamIsZero) {
  ::shutdown(theirs_.get(), SHUT_WR);
  EXPECT_EQ(rx_.RecvRecord(ours_.get(), 4096).n, 0);
}

INSTANTIATE_TEST_SUITE_P(PeekOrNot, RecvRecordTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Peek" : "NoPeek"; });

TEST(RecvRecordNoPeekTest, ARecordLongerThanTheRoomIsReportedNotCut) {
  UniqueFd ours, theirs;
  SeqpacketPair(&ours, &theirs);
  RxBuffer rx(1 * kMiB, 1024);
  rx.DisableRecordPeek();
  SendRecord(theirs.get(), Pattern(0, 100));
  SendRecord(theirs.get(), Pattern(100, 5000));
  EXPECT_EQ(rx.RecvRecord(ours.get(), 1024).n, 100);
  const RxBuffer::RecordResult r = rx.RecvRecord(ours.get(), 1024);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.record_len, 5000u);
  // Nothing of the cut record was queued.
  EXPECT_EQ(rx.size(), 100u);
}

TEST(RecvRecordPeekTest, EnlargesTheRoomToTheRecord) {
  UniqueFd ours, theirs;
  SeqpacketPair(&ours, &theirs);
  RxBuffer rx(1 * kMiB, 1024);
  SendRecord(theirs.get(), Pattern(0, 50000));
  // The peeked length enlarges a |max_record| that is too small.
  const RxBuffer::RecordResult r = rx.RecvRecord(ours.get(), 16);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.n, 50000);
  EXPECT_EQ(rx.Take(SIZE_MAX).ToString(), Pattern(0, 50000));
}

// ---------------------------------------------------------------------------
// SocketConnection over SOCK_SEQPACKET

struct Peer {
  std::unique_ptr<SocketConnection> conn;
  std::vector<E> events;
  absl::Status closed_status = absl::UnknownError("not closed");
  bool reading = true;
  uint64_t to_send = 0, sent = 0, received = 0, mismatches = 0;
  SliceChain pending;
  bool shutdown_when_sent = false;
  std::string in;  // when keep_bytes
  bool keep_bytes = false;

  void Attach(std::unique_ptr<SocketConnection> c) {
    conn = std::move(c);
    conn->SetEventHandler([this](const ConnectionEvent& e) {
      events.push_back(e.type);
      if (e.type == E::kClosed) closed_status = e.status;
      if (reading && (e.type == E::kReadable || e.type == E::kClosed)) ReadAll();
      if (e.type == E::kWritable) Pump();
    });
  }
  void ReadAll() {
    for (;;) {
      auto chain = conn->Read(SIZE_MAX);
      if (!chain.ok() || chain->empty()) return;
      for (const Slice& s : chain->slices()) {
        for (size_t i = 0; i < s.size(); ++i) {
          if (s.data()[i] != PatternByte(received + i)) ++mismatches;
        }
        received += s.size();
      }
      if (keep_bytes) in += chain->ToString();
    }
  }
  void Pump() {
    if (conn->state() != ConnectionState::kOpen) return;
    for (;;) {
      if (pending.empty() && sent < to_send) {
        const size_t n = std::min<uint64_t>(100 * 1000, to_send - sent);  // not record-aligned
        pending.Append(Slice::Copy(Pattern(sent, n)));
      }
      if (pending.empty()) break;
      auto n = conn->Write(pending);
      ASSERT_THAT(n, IsOk());
      sent += *n;
      if (*n == 0) return;
    }
    if (shutdown_when_sent && sent == to_send) {
      shutdown_when_sent = false;
      VRPC_EXPECT_OK(conn->ShutdownWrite());
    }
  }
  size_t Count(E type) const { return std::count(events.begin(), events.end(), type); }
};

class SeqpacketConnectionTest : public ::testing::Test {
 protected:
  // |theirs_| stays a raw socket; the connection owns the other end.
  void OpenOne(const KernelOptions& options = {}) {
    UniqueFd ours;
    SeqpacketPair(&ours, &theirs_);
    us_.Attach(SocketConnection::Open(std::move(ours), reactor_, options));
  }
  void OpenTwo() {
    UniqueFd a, b;
    SeqpacketPair(&a, &b);
    us_.Attach(SocketConnection::Open(std::move(a), reactor_, {}));
    them_.Attach(SocketConnection::Open(std::move(b), reactor_, {}));
  }
  io::ManualReactor reactor_;
  UniqueFd theirs_;
  Peer us_, them_;
};

TEST_F(SeqpacketConnectionTest, RecordsAreConcatenatedInOrder) {
  OpenOne();
  us_.keep_bytes = true;
  SendRecord(theirs_.get(), Pattern(0, 1));
  SendRecord(theirs_.get(), Pattern(1, 1000));
  SendRecord(theirs_.get(), Pattern(1001, 150000));
  reactor_.RunUntilIdle();
  EXPECT_EQ(us_.received, 151001u);
  EXPECT_EQ(us_.mismatches, 0u);
  EXPECT_EQ(us_.conn->stats().rx_bytes_copied, 151001u);
  EXPECT_FALSE(us_.conn->AtEof());
}

TEST_F(SeqpacketConnectionTest, AnEmptyRecordIsSkippedNotEof) {
  OpenOne();
  SendRecord(theirs_.get(), "");
  SendRecord(theirs_.get(), Pattern(0, 3));
  reactor_.RunUntilIdle();
  EXPECT_EQ(us_.received, 3u);
  EXPECT_EQ(us_.Count(E::kPeerShutdown), 0u);
  EXPECT_FALSE(us_.conn->AtEof());
  // The real end of the stream.
  ASSERT_EQ(::shutdown(theirs_.get(), SHUT_WR), 0);
  reactor_.RunUntilIdle();
  EXPECT_EQ(us_.Count(E::kPeerShutdown), 1u);
  EXPECT_TRUE(us_.conn->AtEof());
}

TEST_F(SeqpacketConnectionTest, WritesRecordsOfBoundedSize) {
  OpenOne();
  constexpr size_t kBytes = 150 * 1000;
  SliceChain data(Slice::Copy(Pattern(0, 70 * 1000)));
  data.Append(Slice::Copy(Pattern(70 * 1000, 80 * 1000)));
  VRPC_ASSERT_OK_AND_ASSIGN(size_t n, us_.conn->Write(data));
  ASSERT_EQ(n, kBytes);
  std::string got;
  std::vector<size_t> sizes;
  std::string buf(256 * 1024, '\0');
  for (;;) {
    const ssize_t r = ::recv(theirs_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (r <= 0) break;
    sizes.push_back(static_cast<size_t>(r));
    got.append(buf.data(), static_cast<size_t>(r));
  }
  EXPECT_EQ(got, Pattern(0, kBytes));
  EXPECT_THAT(sizes, ElementsAre(SocketConnection::kMaxRecordOut, SocketConnection::kMaxRecordOut,
                                 kBytes - 2 * SocketConnection::kMaxRecordOut));
}

TEST_F(SeqpacketConnectionTest, EmsgsizeShrinksTheRecords) {
  UniqueFd ours;
  SeqpacketPair(&ours, &theirs_);
  // A small send buffer: AF_UNIX refuses records longer than about it.
  const int sndbuf = 8192;  // the kernel doubles it
  ASSERT_EQ(::setsockopt(ours.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
  us_.Attach(SocketConnection::Open(std::move(ours), reactor_, {}));
  them_.keep_bytes = true;
  constexpr size_t kBytes = 40000;
  SliceChain data(Slice::Copy(Pattern(0, kBytes)));
  size_t sent = 0;
  std::string got;
  std::string buf(64 * 1024, '\0');
  for (int i = 0; i < 1000 && got.size() < kBytes; ++i) {
    if (!data.empty()) {
      auto n = us_.conn->Write(data);
      ASSERT_THAT(n, IsOk());
      sent += *n;
    }
    const ssize_t r = ::recv(theirs_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (r > 0) got.append(buf.data(), static_cast<size_t>(r));
    reactor_.RunUntilIdle();
  }
  EXPECT_EQ(sent, kBytes);
  EXPECT_EQ(got, Pattern(0, kBytes));
  // 64 KiB, 32 KiB and 16 KiB records exceed the 16 KiB buffer.
  EXPECT_LT(us_.conn->record_out_for_testing(), 16384u);
  EXPECT_EQ(us_.conn->state(), ConnectionState::kOpen);
}

TEST_F(SeqpacketConnectionTest, ARecordThatDoesNotFitIsDataLossNotSilence) {
  KernelOptions options;
  options.rx_chunk_bytes = 4096;  // the receive room is then exactly 4096 bytes
  OpenOne(options);
  us_.conn->DisableRecordPeekForTesting(4096);
  us_.reading = false;
  SendRecord(theirs_.get(), Pattern(0, 4096));
  SendRecord(theirs_.get(), Pattern(4096, 4097));
  reactor_.RunUntilIdle();
  ASSERT_EQ(us_.Count(E::kClosed), 1u);
  EXPECT_THAT(us_.closed_status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("a record of 4097 bytes")));
  // The record before it is still readable.
  us_.ReadAll();
  EXPECT_EQ(us_.received, 4096u);
  EXPECT_EQ(us_.mismatches, 0u);
}

TEST_F(SeqpacketConnectionTest, MovesEightMiBBothWaysAndClosesInOrder) {
  OpenTwo();
  us_.to_send = them_.to_send = 8 * kMiB + 123;
  us_.shutdown_when_sent = them_.shutdown_when_sent = true;
  us_.Pump();
  them_.Pump();
  for (int i = 0; i < 100000 && (us_.Count(E::kClosed) == 0 || them_.Count(E::kClosed) == 0);
       ++i) {
    reactor_.RunUntilIdle();
  }
  for (Peer* p : {&us_, &them_}) {
    EXPECT_EQ(p->sent, 8 * kMiB + 123);
    EXPECT_EQ(p->received, 8 * kMiB + 123);
    EXPECT_EQ(p->mismatches, 0u);
    EXPECT_EQ(p->Count(E::kClosed), 1u);
    VRPC_EXPECT_OK(p->closed_status);
    EXPECT_EQ(p->Count(E::kPeerShutdown), 1u);
    EXPECT_TRUE(p->conn->AtEof());
  }
  EXPECT_GE(us_.Count(E::kCreditBlocked), 1u);
  EXPECT_EQ(us_.Count(E::kCreditBlocked), us_.Count(E::kWritable));
}

TEST_F(SeqpacketConnectionTest, HalfCloseKeepsTheOtherDirectionOpen) {
  OpenTwo();
  VRPC_ASSERT_OK(us_.conn->ShutdownWrite());
  SliceChain late(Slice::Copy("x"));
  EXPECT_THAT(us_.conn->Write(late), StatusIs(absl::StatusCode::kFailedPrecondition));
  reactor_.RunUntilIdle();
  EXPECT_THAT(them_.events, ElementsAre(E::kPeerShutdown, E::kReadable));
  EXPECT_TRUE(them_.conn->AtEof());
  EXPECT_EQ(them_.conn->state(), ConnectionState::kOpen);
  them_.to_send = 1 * kMiB;
  them_.shutdown_when_sent = true;
  them_.Pump();
  for (int i = 0; i < 10000 && us_.Count(E::kClosed) == 0; ++i) reactor_.RunUntilIdle();
  EXPECT_EQ(us_.received, 1 * kMiB);
  EXPECT_EQ(us_.mismatches, 0u);
  VRPC_EXPECT_OK(us_.closed_status);
  reactor_.RunUntilIdle();
  EXPECT_EQ(them_.Count(E::kClosed), 1u);
  VRPC_EXPECT_OK(them_.closed_status);
}

TEST_F(SeqpacketConnectionTest, PeerCloseIsEofThenAnOrderlyClose) {
  OpenOne();
  us_.reading = false;
  SendRecord(theirs_.get(), "bye");
  theirs_.Reset();
  reactor_.RunUntilIdle();
  EXPECT_THAT(us_.events, ElementsAre(E::kReadable, E::kPeerShutdown));
  VRPC_ASSERT_OK_AND_ASSIGN(SliceChain in, us_.conn->Read(SIZE_MAX));
  EXPECT_EQ(in.ToString(), "bye");
  reactor_.RunUntilIdle();
  EXPECT_THAT(us_.events, ElementsAre(E::kReadable, E::kPeerShutdown, E::kClosed));
  VRPC_EXPECT_OK(us_.closed_status);
}

}  // namespace
}  // namespace internal
}  // namespace kernel
}  // namespace vrpc
