#include "transport_vsock/vhost_user/memory.h"

#include <fcntl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport_vsock/vhost_user/message.h"
#include "transport_vsock/vhost_user/testing/resources.h"

namespace vrpc {
namespace vhost_user {
namespace {

using testing::CountOpenFds;
using testing::FakeGuestRam;

constexpr uint64_t kMiB = 1024 * 1024;

UniqueFd Dup(int fd) { return UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

std::vector<UniqueFd> Dups(int fd, size_t n) {
  std::vector<UniqueFd> out;
  for (size_t i = 0; i < n; ++i) out.push_back(Dup(fd));
  return out;
}

class MemoryTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fds_before_ = CountOpenFds();
    mappings_before_ = MemoryTable::LiveMappings();
    bytes_before_ = MemoryTable::LiveMappedBytes();
  }
  void TearDown() override {
    EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak";
    EXPECT_EQ(MemoryTable::LiveMappings(), mappings_before_) << "mapping leak";
    EXPECT_EQ(MemoryTable::LiveMappedBytes(), bytes_before_);
  }

  size_t fds_before_ = 0;
  uint64_t mappings_before_ = 0;
  uint64_t bytes_before_ = 0;
  std::unique_ptr<FakeGuestRam> ram_ = std::make_unique<FakeGuestRam>(4 * kMiB);
};

TEST_F(MemoryTableTest, MapsTwoRegionsAndSeesGuestWrites) {
  // Like QEMU's q35 layout: [0, 640K) and [768K, 4M) of one memfd.
  const std::vector<MemoryRegionDesc> regions = {
      FakeGuestRam::Region(0xc0000, 0xc0000, 4 * kMiB - 0xc0000),
      FakeGuestRam::Region(0, 0, 0xa0000)};
  std::memcpy(ram_->data() + 0x1000, "hello", 5);
  std::memcpy(ram_->data() + 0x200000, "world", 5);
  VRPC_ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<const MemoryTable> table,
      MemoryTable::Map(regions, Dups(ram_->fd(), 2), MemoryTable::Limits()));
  ASSERT_EQ(table->regions().size(), 2u);
  EXPECT_EQ(table->regions()[0].guest_addr, 0u);  // sorted by guest address
  EXPECT_EQ(table->total_size(), 0xa0000 + 4 * kMiB - 0xc0000);
  EXPECT_EQ(MemoryTable::LiveMappings(), mappings_before_ + 2);
  uint8_t* p = table->GuestToHost(0x1000, 5);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::memcmp(p, "hello", 5), 0);
  p = table->GuestToHost(0x200000, 5);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::memcmp(p, "world", 5), 0);
  // Writes through the backend's mapping reach the guest.
  std::memcpy(table->GuestToHost(0x300000, 3), "abc", 3);
  EXPECT_EQ(std::memcmp(ram_->data() + 0x300000, "abc", 3), 0);
  // The descriptors were closed after mapping.
  EXPECT_EQ(CountOpenFds(), fds_before_);
  table.reset();
  EXPECT_EQ(MemoryTable::LiveMappings(), mappings_before_);
}

TEST_F(MemoryTableTest, Translation) {
  const std::vector<MemoryRegionDesc> regions = {
      FakeGuestRam::Region(0, 0, kMiB), FakeGuestRam::Region(kMiB, kMiB, kMiB),
      FakeGuestRam::Region(4 * kMiB, 3 * kMiB, kMiB)};
  VRPC_ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<const MemoryTable> table,
      MemoryTable::Map(regions, Dups(ram_->fd(), 3), MemoryTable::Limits()));
  EXPECT_NE(table->GuestToHost(kMiB - 16, 16), nullptr);
  // Straddling two adjacent regions, inside the hole, past the end, overflow.
  EXPECT_EQ(table->GuestToHost(kMiB - 8, 16), nullptr);
  EXPECT_EQ(table->GuestToHost(3 * kMiB, 1), nullptr);
  EXPECT_EQ(table->GuestToHost(5 * kMiB - 1, 2), nullptr);
  EXPECT_EQ(table->GuestToHost(UINT64_MAX - 8, 16), nullptr);
  EXPECT_EQ(table->GuestToHost(0, UINT64_MAX), nullptr);
  EXPECT_NE(table->GuestToHost(0, 0), nullptr);
  VRPC_ASSERT_OK_AND_ASSIGN(uint64_t gpa,
                            table->UserToGuest(FakeGuestRam::UserAddr(3 * kMiB + 64), 64));
  EXPECT_EQ(gpa, 4 * kMiB + 64);
  EXPECT_THAT(table->UserToGuest(FakeGuestRam::UserAddr(2 * kMiB), 1),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(table->UserToGuest(UINT64_MAX, 2), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(MemoryTableTest, UnalignedMmapOffset) {
  std::memcpy(ram_->data() + 0x1234, "xyz", 3);
  const std::vector<MemoryRegionDesc> regions = {FakeGuestRam::Region(0x10000, 0x1234, 0x1000)};
  VRPC_ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<const MemoryTable> table,
      MemoryTable::Map(regions, Dups(ram_->fd(), 1), MemoryTable::Limits()));
  EXPECT_EQ(std::memcmp(table->GuestToHost(0x10000, 3), "xyz", 3), 0);
}

TEST_F(MemoryTableTest, RejectsBadLayoutsAndReleasesEverything) {
  const std::vector<std::vector<MemoryRegionDesc>> bad = {
      // overlap in guest memory
      {FakeGuestRam::Region(0, 0, kMiB), FakeGuestRam::Region(kMiB - 1, kMiB, kMiB)},
      // overlap in user addresses
      {FakeGuestRam::Region(0, 0, kMiB), FakeGuestRam::Region(8 * kMiB, kMiB - 1, kMiB)},
      // past the end of the file
      {FakeGuestRam::Region(0, 0, kMiB), FakeGuestRam::Region(kMiB, 3 * kMiB, 2 * kMiB)},
      // arithmetic overflow
      {FakeGuestRam::Region(0, 0, kMiB), {kMiB, 0x1000, 0, UINT64_MAX - 0x10}},
      {{UINT64_MAX - 0x10, 0x1000, 0, 0}},
  };
  for (const auto& regions : bad) {
    EXPECT_THAT(MemoryTable::Map(regions, Dups(ram_->fd(), regions.size()),
                                 MemoryTable::Limits()),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_EQ(MemoryTable::LiveMappings(), mappings_before_);
  }
  // Descriptor count mismatch.
  EXPECT_THAT(MemoryTable::Map({FakeGuestRam::Region(0, 0, kMiB)},
                               Dups(ram_->fd(), 2), MemoryTable::Limits()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(MemoryTableTest, RejectsNonRegularFiles) {
  std::vector<UniqueFd> fds;
  fds.push_back(testing::MakeEventFd());
  EXPECT_THAT(MemoryTable::Map({FakeGuestRam::Region(0, 0, 4096)}, std::move(fds),
                               MemoryTable::Limits()),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("regular")));
}

TEST_F(MemoryTableTest, Limits) {
  MemoryTable::Limits limits;
  limits.max_total_bytes = kMiB;
  EXPECT_THAT(MemoryTable::Map({FakeGuestRam::Region(0, 0, kMiB + 1)},
                               Dups(ram_->fd(), 1), limits),
              StatusIs(absl::StatusCode::kInvalidArgument));
  limits = MemoryTable::Limits();
  limits.max_regions = 1;
  EXPECT_THAT(MemoryTable::Map({FakeGuestRam::Region(0, 0, 4096),
                                FakeGuestRam::Region(4096, 4096, 4096)},
                               Dups(ram_->fd(), 2), limits),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(MemoryTableTest, AddAndRemoveShareMappings) {
  VRPC_ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<const MemoryTable> one,
      MemoryTable::Empty()->WithRegionAdded(FakeGuestRam::Region(kMiB, kMiB, kMiB),
                                            Dup(ram_->fd()), MemoryTable::Limits()));
  VRPC_ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<const MemoryTable> two,
      one->WithRegionAdded(FakeGuestRam::Region(0, 0, kMiB), Dup(ram_->fd()),
                           MemoryTable::Limits()));
  ASSERT_EQ(two->regions().size(), 2u);
  EXPECT_EQ(two->regions()[0].guest_addr, 0u);
  EXPECT_EQ(MemoryTable::LiveMappings(), mappings_before_ + 2);  // shared, not copied
  EXPECT_EQ(two->regions()[1].host_addr, one->regions()[0].host_addr);
  // Overlap with an existing region.
  EXPECT_THAT(two->WithRegionAdded(FakeGuestRam::Region(kMiB / 2, 2 * kMiB, 4096),
                                   Dup(ram_->fd()), MemoryTable::Limits()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Remove matches guest_addr, user_addr and size; mmap_offset is ignored.
  MemoryRegionDesc victim = FakeGuestRam::Region(kMiB, kMiB, kMiB);
  victim.mmap_offset = 12345;
  VRPC_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const MemoryTable> back,
                            two->WithRegionRemoved(victim));
  ASSERT_EQ(back->regions().size(), 1u);
  EXPECT_EQ(back->regions()[0].guest_addr, 0u);
  MemoryRegionDesc wrong_size = FakeGuestRam::Region(0, 0, kMiB - 4096);
  EXPECT_THAT(back->WithRegionRemoved(wrong_size), StatusIs(absl::StatusCode::kNotFound));
  // The removed region stays mapped while |one| and |two| hold it.
  one.reset();
  two.reset();
  EXPECT_EQ(MemoryTable::LiveMappings(), mappings_before_ + 1);
  back.reset();
  EXPECT_EQ(MemoryTable::LiveMappings(), mappings_before_);
}

}  // namespace
}  // namespace vhost_user
}  // namespace vrpc
