#include "transport_vsock/driver/probe_options.h"

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"

namespace vrpc {
namespace vsock {
namespace {

TEST(ProbeOptionsTest, Connect) {
  auto o = ParseProbeOptions({"--bus=virtio-user:/tmp/s", "--mode=poll", "connect", "2", "5000",
                              "1048576"});
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->bus, ProbeBusKind::kVirtioUser);
  EXPECT_EQ(o->bus_address, "/tmp/s");
  EXPECT_EQ(o->command, ProbeCommand::kConnect);
  EXPECT_EQ(o->cid, 2u);
  EXPECT_EQ(o->port, 5000u);
  EXPECT_EQ(o->bytes, 1048576u);
  EXPECT_EQ(o->mode, DriverNotifyMode::kPoll);
}

TEST(ProbeOptionsTest, ServeAndFlags) {
  auto o = ParseProbeOptions({"serve", "6000", "4", "--bus=virtio-user:/s", "--rx-buffer-size=4096",
                              "--queue-size=64", "--timeout=5"});
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->command, ProbeCommand::kServe);
  EXPECT_EQ(o->port, 6000u);
  EXPECT_EQ(o->count, 4u);
  EXPECT_EQ(o->rx_buffer_size, 4096u);
  EXPECT_EQ(o->queue_size, 64u);
  EXPECT_EQ(o->timeout, absl::Seconds(5));
}

TEST(ProbeOptionsTest, OtherBusesParse) {
  auto uio = ParseProbeOptions({"--bus=uio:uio0", "serve", "1", "1"});
  ASSERT_THAT(uio, IsOk());
  EXPECT_EQ(uio->bus, ProbeBusKind::kUio);
  auto vfio = ParseProbeOptions({"--bus=vfio:0000:00:04.0", "serve", "1", "1"});
  ASSERT_THAT(vfio, IsOk());
  EXPECT_EQ(vfio->bus, ProbeBusKind::kVfio);
  EXPECT_EQ(vfio->bus_address, "0000:00:04.0");
  EXPECT_FALSE(vfio->bind);
  auto bind = ParseProbeOptions({"--bus=uio:0000:00:04.0", "--bind", "serve", "1", "1"});
  ASSERT_THAT(bind, IsOk());
  EXPECT_TRUE(bind->bind);
}

TEST(ProbeOptionsTest, Rejects) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"connect", "2", "1", "1"},
      {"--bus=virtio-user:", "connect", "2", "1", "1"},
      {"--bus=pci:x", "connect", "2", "1", "1"},
      {"--bus=virtio-user:/s", "connect", "2", "1"},
      {"--bus=virtio-user:/s", "connect", "2", "x", "1"},
      {"--bus=virtio-user:/s", "connect", "2", "1", "0"},
      {"--bus=virtio-user:/s", "serve", "1"},
      {"--bus=virtio-user:/s", "dance", "1", "1"},
      {"--bus=virtio-user:/s", "--mode=spin", "serve", "1", "1"},
      {"--bus=virtio-user:/s", "--rx-buffer-size=70000", "serve", "1", "1"},
      {"--bus=virtio-user:/s", "--frobnicate=1", "serve", "1", "1"},
  };
  for (const auto& args : bad) {
    EXPECT_THAT(ParseProbeOptions(args), StatusIs(absl::StatusCode::kInvalidArgument))
        << args.size();
  }
  auto help = ParseProbeOptions({"--help"});
  ASSERT_THAT(help, IsOk());
  EXPECT_TRUE(help->help);
}

}  // namespace
}  // namespace vsock
}  // namespace vrpc
