// File: transport_vsock/dial/dial_test.cc
//
// Addresses become working endpoints: loopback on one reactor, and the
// userspace pair (vrpc's device on vhost-user:, the guest driver on
// virtio-user:) on two reactors over a real vhost-user socket, both ways;
// sharing; and the errors a user sees for wrong addresses.
#include "transport_vsock/dial/dial.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/base/status_matchers.h"
#include "core/io/event_loop_thread.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace dial {
namespace {

using ::testing::HasSubstr;

class DialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vrpc-dial-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    VRPC_ASSERT_OK_AND_ASSIGN(host_, io::EventLoopThread::Start("host"));
    VRPC_ASSERT_OK_AND_ASSIGN(guest_, io::EventLoopThread::Start("guest"));
  }
  void TearDown() override {
    guest_->RunSync([&] { guest_things_.clear(); });
    host_->RunSync([&] { host_things_.clear(); });
    guest_.reset();
    host_.reset();
    ::unlink((dir_ + "/vm.vsock").c_str());
    ::rmdir(dir_.c_str());
  }

  // Listens on |loop|; counts accepted connections.
  void ListenOn(io::EventLoopThread& loop, std::vector<std::shared_ptr<void>>& things,
                const std::string& address) {
    loop.RunSync([&] {
      auto listener = Listen(address, loop.reactor());
      ASSERT_THAT(listener, IsOk()) << address;
      (*listener)->SetAcceptHandler([this, &things](std::unique_ptr<transport::Connection> c) {
        things.push_back(std::shared_ptr<transport::Connection>(std::move(c)));
        accepted_.fetch_add(1);
      });
      things.push_back(std::shared_ptr<transport::Listener>(*std::move(listener)));
    });
  }

  // Dials |address| on |loop| and waits for kConnected.
  void ConnectFrom(io::EventLoopThread& loop, std::vector<std::shared_ptr<void>>& things,
                   const std::string& address) {
    auto connected = std::make_shared<absl::Notification>();
    loop.RunSync([&] {
      auto connector = Dial(address, loop.reactor());
      ASSERT_THAT(connector, IsOk()) << address;
      auto conn = (*connector)->Connect();
      ASSERT_THAT(conn, IsOk());
      (*conn)->SetEventHandler([connected](const transport::ConnectionEvent& e) {
        if (e.type == transport::ConnectionEventType::kConnected) connected->Notify();
      });
      things.push_back(std::shared_ptr<transport::Connector>(*std::move(connector)));
      things.push_back(std::shared_ptr<transport::Connection>(*std::move(conn)));
    });
    EXPECT_TRUE(connected->WaitForNotificationWithTimeout(absl::Seconds(30))) << address;
  }

  bool WaitAccepted(int n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (accepted_.load() < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    return accepted_.load() >= n;
  }

  std::string dir_;
  std::unique_ptr<io::EventLoopThread> host_, guest_;
  std::vector<std::shared_ptr<void>> host_things_, guest_things_;
  std::atomic<int> accepted_{0};
};

TEST_F(DialTest, LoopbackListenAndDialShareOneLinkPerReactor) {
  ListenOn(*host_, host_things_, "loopback:7000");
  ConnectFrom(*host_, host_things_, "loopback:7000");
  ConnectFrom(*host_, host_things_, "loopback:7000");
  EXPECT_TRUE(WaitAccepted(2));
}

TEST_F(DialTest, GuestDriverDialsTheDeviceOverVhostUser) {
  const std::string sock = dir_ + "/vm.vsock";
  ListenOn(*host_, host_things_, "vhost-user:" + sock + ":3:5000");
  ConnectFrom(*guest_, guest_things_, "virtio-user:" + sock + ":2:5000");
  // A second connector on the same reactor shares the driver.
  ConnectFrom(*guest_, guest_things_, "virtio-user:" + sock + ":host:5000");
  EXPECT_TRUE(WaitAccepted(2));
}

TEST_F(DialTest, DeviceDialsAGuestDriverListener) {
  const std::string sock = dir_ + "/vm.vsock";
  host_->RunSync([&] {
    auto c = Dial("vhost-user:" + sock + ":3:6000", host_->reactor());
    ASSERT_THAT(c, IsOk());
    host_things_.push_back(std::shared_ptr<transport::Connector>(*std::move(c)));
  });
  ListenOn(*guest_, guest_things_, "virtio-user:" + sock + ":3:6000");
  ConnectFrom(*host_, host_things_, "vhost-user:" + sock + ":3:6000");
  EXPECT_TRUE(WaitAccepted(1));
}

TEST_F(DialTest, ServeVmIsFoundByVhostUserAddresses) {
  const std::string sock = dir_ + "/vm.vsock";
  host_->RunSync([&] {
    vsock::VmSpec spec;
    spec.guest_cid = 3;
    spec.socket = sock;
    auto served = ServeVm(spec, host_->reactor());
    ASSERT_THAT(served, IsOk());
    host_things_.push_back(*served);
    EXPECT_THAT(ServeVm(spec, host_->reactor()).status(),
                StatusIs(absl::StatusCode::kAlreadyExists));
    // The same device: a different CID for its socket is an error.
    EXPECT_THAT(Dial("vhost-user:" + sock + ":4:5", host_->reactor()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument));
  });
  ListenOn(*host_, host_things_, "vhost-user:" + sock + ":3:5000");
  ConnectFrom(*guest_, guest_things_, "virtio-user:" + sock + ":2:5000");
  EXPECT_TRUE(WaitAccepted(1));
}

TEST_F(DialTest, ErrorsNameTheProblem) {
  const std::string sock = dir_ + "/vm.vsock";
  host_->RunSync([&] {
    EXPECT_THAT(Listen("tcp:1.2.3.4:5", host_->reactor()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown scheme")));
    EXPECT_THAT(Listen("hvsock:/tmp/x.sock:5", host_->reactor()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("only dial")));
    EXPECT_THAT(Dial("virtio-user:" + dir_ + "/nothing:2:5", host_->reactor()).status(),
                StatusIs(absl::StatusCode::kUnavailable));
    // A PCI function that does not exist (never a real one on this host).
    EXPECT_FALSE(Dial("uio:0000:ff:1f.7:2:5", host_->reactor()).ok());
    EXPECT_FALSE(Listen("vfio:0000:ff:1f.7:any:5", host_->reactor()).ok());
    DialOptions bad;
    bad.notify_mode = "sometimes";
    EXPECT_FALSE(Dial("vhost-user:" + sock + ":3:5", host_->reactor(), bad).ok());
    auto first = Dial("vhost-user:" + sock + ":3:5", host_->reactor());
    ASSERT_THAT(first, IsOk());
    EXPECT_THAT(Dial("vhost-user:" + sock + ":4:5", host_->reactor()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("guest CID 3")));
    host_things_.push_back(std::shared_ptr<transport::Connector>(*std::move(first)));
  });
  guest_->RunSync([&] {
    EXPECT_THAT(Listen("virtio-user:" + sock + ":9:5", guest_->reactor()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("guest CID 3")));
    // Only the host is a virtio-vsock guest's peer.
    EXPECT_FALSE(Dial("virtio-user:" + sock + ":7:5", guest_->reactor()).ok());
  });
}

}  // namespace
}  // namespace dial
}  // namespace vrpc
