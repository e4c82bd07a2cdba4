// File: core/transport/address_test.cc
#include "core/transport/address.h"

#include <string>

#include "gtest/gtest.h"

namespace vrpc {
namespace transport {
namespace {

Address Parsed(const std::string& text) {
  absl::StatusOr<Address> a = ParseAddress(text);
  EXPECT_TRUE(a.ok()) << text << ": " << a.status();
  return a.ok() ? *a : Address{};
}

TEST(AddressTest, ParsesEveryScheme) {
  Address u = Parsed("unix:/run/vrpc/a.sock");
  EXPECT_EQ(u.kind, Address::Kind::kUnix);
  EXPECT_EQ(u.path, "/run/vrpc/a.sock");

  Address v = Parsed("vsock:3:5000");
  EXPECT_EQ(v.kind, Address::Kind::kVsock);
  EXPECT_EQ(v.cid, 3u);
  EXPECT_EQ(v.port, 5000u);

  Address sp = Parsed("vsock-seqpacket:3:5000");
  EXPECT_EQ(sp.kind, Address::Kind::kVsockSeqpacket);
  EXPECT_EQ(sp.cid, 3u);
  EXPECT_EQ(sp.port, 5000u);
  EXPECT_TRUE(sp.path.empty());

  Address h = Parsed("hvsock:/tmp/vm3.sock:1024");
  EXPECT_EQ(h.kind, Address::Kind::kHvsock);
  EXPECT_EQ(h.path, "/tmp/vm3.sock");
  EXPECT_EQ(h.port, 1024u);

  Address vu = Parsed("virtio-user:/tmp/vm3.vsock:2:5000");
  EXPECT_EQ(vu.kind, Address::Kind::kVirtioUser);
  EXPECT_EQ(vu.path, "/tmp/vm3.vsock");
  EXPECT_EQ(vu.cid, 2u);
  EXPECT_EQ(vu.port, 5000u);

  Address vh = Parsed("vhost-user:/tmp/vm3.vsock:3:5000");
  EXPECT_EQ(vh.kind, Address::Kind::kVhostUser);
  EXPECT_EQ(vh.cid, 3u);

  Address u2 = Parsed("uio:0000:00:04.0:any:1024");
  EXPECT_EQ(u2.kind, Address::Kind::kUio);
  EXPECT_EQ(u2.path, "0000:00:04.0");
  EXPECT_EQ(u2.cid, kCidAny);
  EXPECT_EQ(u2.port, 1024u);
  Address f = Parsed("vfio:0000:00:05.0:2:9");
  EXPECT_EQ(f.kind, Address::Kind::kVfio);
  EXPECT_EQ(f.path, "0000:00:05.0");

  Address l = Parsed("loopback:7");
  EXPECT_EQ(l.kind, Address::Kind::kLoopback);
  EXPECT_EQ(l.port, 7u);
}

TEST(AddressTest, CidKeywords) {
  EXPECT_EQ(Parsed("vsock:any:1").cid, kCidAny);
  EXPECT_EQ(Parsed("vsock:hypervisor:1").cid, kCidHypervisor);
  EXPECT_EQ(Parsed("vsock:local:1").cid, kCidLocal);
  EXPECT_EQ(Parsed("vsock:host:1").cid, kCidHost);
  EXPECT_EQ(Parsed("virtio-user:/s:any:9").cid, kCidAny);
  EXPECT_EQ(Parsed("vsock:4294967295:1").cid, kCidAny);
  EXPECT_EQ(Parsed("vsock-seqpacket:any:1").cid, kCidAny);
  EXPECT_EQ(Parsed("vsock-seqpacket:hypervisor:1").cid, kCidHypervisor);
  EXPECT_EQ(Parsed("vsock-seqpacket:local:1").cid, kCidLocal);
  EXPECT_EQ(Parsed("vsock-seqpacket:host:1").cid, kCidHost);
}

TEST(AddressTest, SeqpacketIsItsOwnKind) {
  EXPECT_STREQ(AddressKindName(Address::Kind::kVsockSeqpacket), "vsock-seqpacket");
  EXPECT_FALSE(Parsed("vsock-seqpacket:3:5") == Parsed("vsock:3:5"));
  absl::StatusOr<Address> bad = ParseAddress("vsock-seqpacket:3");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("expected vsock-seqpacket:CID:PORT"), std::string::npos)
      << bad.status();
}

TEST(AddressTest, PathsMayHoldColons) {
  EXPECT_EQ(Parsed("unix:/tmp/a:b").path, "/tmp/a:b");
  Address h = Parsed("hvsock:/tmp/x:y.sock:52");
  EXPECT_EQ(h.path, "/tmp/x:y.sock");
  EXPECT_EQ(h.port, 52u);
  Address vu = Parsed("virtio-user:/a:b:2:7");
  EXPECT_EQ(vu.path, "/a:b");
  EXPECT_EQ(vu.cid, 2u);
  EXPECT_EQ(vu.port, 7u);
}

TEST(AddressTest, RejectsMalformed) {
  for (const char* bad : {
           "",
           "unix",
           "unix:",
           "tcp:127.0.0.1:80",
           "vsock:3",
           "vsock:3:",
           "vsock::5",
           "vsock:3:5:6",
           "vsock:x:5",
           "vsock:-1:5",
           "vsock:4294967296:5",
           "vsock:3:4294967296",
           "vsock:3:+5",
           "vsock-seqpacket:3",
           "vsock-seqpacket::5",
           "vsock-seqpacket:3:5:6",
           "vsock-seqpacket:x:5",
           "vsock-seqpacket:4294967296:5",
           "vsock-seqpacket:3:-1",
           "vsock-seq:3:5",
           "hvsock:/tmp/a",
           "hvsock::5",
           "hvsock:/tmp/a:port",
           "virtio-user:/tmp/a:5",
           "virtio-user::2:5",
           "vhost-user:/tmp/a:3:",
           "loopback:",
           "loopback:x",
       }) {
    absl::StatusOr<Address> a = ParseAddress(bad);
    EXPECT_FALSE(a.ok()) << "\"" << bad << "\" parsed";
    if (!a.ok()) EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(AddressTest, RejectsUnixPathsTooLongForSockaddr) {
  std::string ok_path = "/" + std::string(106, 'p');
  EXPECT_TRUE(ParseAddress("unix:" + ok_path).ok());
  EXPECT_FALSE(ParseAddress("unix:" + ok_path + "p").ok());
  EXPECT_FALSE(ParseAddress("hvsock:" + ok_path + "p:5").ok());
}

TEST(AddressTest, FormatRoundTrips) {
  for (const char* text : {"unix:/run/a.sock", "vsock:3:5000", "vsock:4294967295:1",
                           "hvsock:/tmp/v.sock:1024", "virtio-user:/tmp/v:2:5000",
                           "vhost-user:/tmp/v:3:5000", "uio:0000:00:04.0:3:1024",
                           "vfio:0000:00:04.0:2:5", "loopback:9",
                           "vsock-seqpacket:1:1024", "vsock-seqpacket:4294967295:7"}) {
    Address a = Parsed(text);
    EXPECT_EQ(FormatAddress(a), text);
    EXPECT_EQ(Parsed(FormatAddress(a)), a);
  }
  EXPECT_EQ(FormatAddress(Parsed("vsock:host:5")), "vsock:2:5");
  EXPECT_EQ(FormatAddress(Parsed("vsock-seqpacket:local:5")), "vsock-seqpacket:1:5");
}

}  // namespace
}  // namespace transport
}  // namespace vrpc
