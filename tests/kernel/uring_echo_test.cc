// The kernel socket transport over Unix sockets on a real UringReactor
// thread: the probe echo actors (content-checked pattern, echoed back)
// through ListenKernel / KernelConnector.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/io/event_loop_thread.h"
#include "core/transport/address.h"
#include "core/transport/connection.h"
#include "core/transport/listener.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/driver/probe_echo.h"
#include "transport_vsock/kernel/kernel_transport.h"

namespace vrpc {
namespace kernel {
namespace {

using vsock::EchoClient;
using vsock::EchoServer;

constexpr uint64_t kMiB = 1 << 20;

class UringEchoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vrpc-ku-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    address_ = "unix:" + dir_ + "/echo.sock";
    VRPC_ASSERT_OK_AND_ASSIGN(loop_, io::EventLoopThread::Start("kernel-test"));
  }
  void TearDown() override {
    loop_->RunSync([&] {
      clients_.clear();
      server_.reset();
    });
    loop_.reset();
    ::rmdir(dir_.c_str());
  }

  // An EchoServer for |count| connections and |count| EchoClients of
  // |bytes| each; returns the clients' verdicts and the server's.
  std::vector<std::future<absl::Status>> Run(int count, uint64_t bytes) {
    std::vector<std::future<absl::Status>> out;
    loop_->RunSync([&] {
      auto address = transport::ParseAddress(address_);
      ASSERT_THAT(address, IsOk());
      auto listener = ListenKernel(*address, loop_->reactor());
      ASSERT_THAT(listener, IsOk());
      auto server_done = std::make_shared<std::promise<absl::Status>>();
      out.push_back(server_done->get_future());
      server_ = std::make_unique<EchoServer>(*std::move(listener), count,
                                             [server_done](absl::Status s) {
                                               server_done->set_value(s);
                                             });
      auto connector = KernelConnector(*address, loop_->reactor());
      ASSERT_THAT(connector, IsOk());
      for (int i = 0; i < count; ++i) {
        auto done = std::make_shared<std::promise<absl::Status>>();
        out.push_back(done->get_future());
        clients_.push_back(std::make_unique<EchoClient>(
            **connector, bytes, [done](absl::Status s) { done->set_value(s); }));
      }
    });
    return out;
  }

  std::string dir_, address_;
  std::unique_ptr<io::EventLoopThread> loop_;
  std::unique_ptr<EchoServer> server_;
  std::vector<std::unique_ptr<EchoClient>> clients_;
};

TEST_F(UringEchoTest, EchoesSixteenMiBWithContentChecked) {
  // 16 MiB out and 16 MiB back: more than 8 MiB each way.
  std::vector<std::future<absl::Status>> verdicts = Run(1, 16 * kMiB);
  for (auto& v : verdicts) {
    ASSERT_EQ(v.wait_for(std::chrono::seconds(120)), std::future_status::ready);
    VRPC_EXPECT_OK(v.get());
  }
  loop_->RunSync([&] {
    EXPECT_EQ(clients_[0]->received(), 16 * kMiB);
    const transport::ConnectionStats stats = clients_[0]->connection()->stats();
    EXPECT_EQ(stats.bytes_written, 16 * kMiB);
    EXPECT_EQ(stats.bytes_read, 16 * kMiB);
    EXPECT_EQ(stats.tx_bytes_copied, 16 * kMiB);
    EXPECT_EQ(stats.rx_bytes_copied, 16 * kMiB);
    EXPECT_EQ(server_->echoed_bytes(), 16 * kMiB);
  });
}

TEST_F(UringEchoTest, ThirtyTwoConcurrentConnections) {
  std::vector<std::future<absl::Status>> verdicts = Run(32, 256 * 1024);
  for (auto& v : verdicts) {
    ASSERT_EQ(v.wait_for(std::chrono::seconds(120)), std::future_status::ready);
    VRPC_EXPECT_OK(v.get());
  }
  loop_->RunSync([&] { EXPECT_EQ(server_->echoed_bytes(), 32 * 256 * 1024u); });
}

}  // namespace
}  // namespace kernel
}  // namespace vrpc
