// Fuzz target: the guest driver against a hostile device.
//
// Each input is a script of steps, played on a ManualReactor against a
// VsockDriver whose DirectBus device is a HostileDevice. A step is an
// opcode byte and its arguments (missing bytes read as zero):
//
//   0 connect PORT16            7 deliver rx: OP TYPE FLAGS SRC16 DST_SEL
//   1 listen PORT8                LEN16 BUF_ALLOC32 FWD_CNT32 PAYLOAD16
//   2 write CONN LEN16 POOL       USED_SEL USED_LEN32
//   3 read CONN                 8 raw used entry: RING ID16 LEN32 ADVANCE
//   4 destroy CONN              9 event: ID8 LEN8
//   5 shutdown-write CONN      10 config guest_cid: SEL ...
//   6 device drains tx:        11 device hangs up
//     RESPOND USED_SEL LEN16   12 advance time MS16
//                              13 interrupt RING
//
// Properties checked: nothing the device does crashes the driver or trips a
// sanitizer; the driver never adopts a reserved CID; everything is released
// when the driver is destroyed (LeakSanitizer in ASan builds).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/base/logging.h"
#include "core/io/manual_reactor.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "transport_vsock/driver/testing/direct_bus.h"
#include "transport_vsock/driver/testing/hostile_device.h"
#include "transport_vsock/driver/vsock_driver.h"
#include "transport_vsock/wire/header.h"

namespace vrpc {
namespace vsock {
namespace {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | U8() << 8); }
  uint32_t U32() { return uint32_t{U16()} | uint32_t{U16()} << 16; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct World {
  io::ManualReactor reactor;
  testing::HostileDevice device;
  std::unique_ptr<VsockDriver> driver;
  std::vector<std::unique_ptr<transport::Listener>> listeners;
  std::vector<std::unique_ptr<transport::Connection>> conns;

  transport::Connection* Conn(uint8_t i) {
    return conns.empty() ? nullptr : conns[i % conns.size()].get();
  }
  uint32_t GuestPort(uint8_t sel) const {
    const auto& tx = device.tx_headers();
    if (tx.empty() || sel >= 200) return 6000 + sel % 4;
    return tx[tx.size() - 1 - sel % tx.size()].src_port;
  }
};

uint64_t PickCid(Input& in) {
  static constexpr uint64_t kCids[] = {3, 5, 0, 1, 2, 0xffffffffu, uint64_t{1} << 40};
  const uint8_t sel = in.U8();
  return sel < 7 ? kCids[sel] : in.U32();
}

void Write(World& w, Input& in) {
  transport::Connection* c = w.Conn(in.U8());
  const size_t len = in.U16() % 8192 + 1;
  const bool pool = in.U8() & 1;
  if (c == nullptr) return;
  uint8_t* data = nullptr;
  Slice s = pool ? c->AllocateWriteBuffer(len, &data) : Slice::Allocate(len, &data);
  for (size_t i = 0; i < len; ++i) data[i] = static_cast<uint8_t>(i);
  SliceChain chain(std::move(s));
  (void)c->Write(chain);
}

void DeliverRx(World& w, Input& in) {
  Header h = w.device.ToGuest(static_cast<Op>(in.U8() % 9), 5000, 0);
  h.type = in.U8() % 4;
  h.flags = in.U8();
  h.src_port = in.U16();
  h.dst_port = w.GuestPort(in.U8());
  h.len = in.U16();
  h.buf_alloc = in.U32();
  h.fwd_cnt = in.U32();
  const std::string payload(in.U16() % 8192, 'x');
  const bool lie = in.U8() & 1;
  const uint32_t used_len = in.U32();
  if (lie) {
    (void)w.device.DeliverRx(h, payload, used_len);
  } else {
    (void)w.device.DeliverRx(h, payload);
  }
}

void Step(World& w, Input& in) {
  switch (in.U8() % 14) {
    case 0: {
      const uint16_t port = in.U16();
      if (!w.driver->up()) break;
      auto connector = w.driver->ConnectorTo(kCidHost, port);
      if (!connector.ok()) break;
      auto c = (*connector)->Connect();
      if (c.ok()) w.conns.push_back(*std::move(c));
      break;
    }
    case 1: {
      auto l = w.driver->Listen(6000 + in.U8() % 4);
      if (l.ok()) {
        (*l)->SetAcceptHandler(
            [&w](std::unique_ptr<transport::Connection> c) { w.conns.push_back(std::move(c)); });
        w.listeners.push_back(*std::move(l));
      }
      break;
    }
    case 2:
      Write(w, in);
      break;
    case 3:
      if (auto* c = w.Conn(in.U8())) (void)c->Read(in.U16());
      break;
    case 4: {
      const uint8_t i = in.U8();
      if (!w.conns.empty()) w.conns.erase(w.conns.begin() + i % w.conns.size());
      break;
    }
    case 5:
      if (auto* c = w.Conn(in.U8())) (void)c->ShutdownWrite();
      break;
    case 6: {
      const bool respond = in.U8() & 1;
      const bool lie = in.U8() & 1;
      const uint16_t len = in.U16();
      w.device.DrainTx(respond, lie ? len : 0);
      break;
    }
    case 7:
      DeliverRx(w, in);
      break;
    case 8: {
      const uint8_t ring = in.U8() % 3;
      const uint16_t id = in.U16();
      const uint32_t len = in.U32();
      (void)w.device.RawUsed(ring, id, len, in.U8() % 4);
      break;
    }
    case 9: {
      const uint8_t id = in.U8();
      (void)w.device.PostEvent(id < 128 ? 0 : id, in.U8() % 8);
      break;
    }
    case 10:
      w.device.set_config_cid(PickCid(in));
      break;
    case 11:
      static_cast<testing::DirectBus&>(w.driver->bus()).HangUp();
      break;
    case 12:
      w.reactor.AdvanceTime(absl::Milliseconds(in.U16() % 5000));
      break;
    case 13:
      w.device.Interrupt(in.U8() % 3);
      break;
  }
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vrpc::vsock;
  vrpc::SetMinLogSeverity(vrpc::LogSeverity::kFatal);
  World w;
  VsockDriverOptions options;
  options.queue_size = 8;
  options.event_queue_size = 4;
  options.rx_buffer_size = 4096;
  options.tx_pool_bytes = 256 * 1024;
  auto driver = VsockDriver::Create(std::make_unique<testing::DirectBus>(&w.device, 1 << 20),
                                    w.reactor, options);
  VRPC_CHECK(driver.ok()) << driver.status();
  w.driver = *std::move(driver);
  Input in(data, size);
  for (int steps = 0; steps < 256 && !in.done(); ++steps) {
    Step(w, in);
    w.reactor.RunUntilIdle(500);
    VRPC_CHECK(IsValidGuestCid(w.driver->guest_cid())) << w.driver->guest_cid();
  }
  w.conns.clear();
  w.listeners.clear();
  w.driver.reset();
  return 0;
}
