// File: core/base/sha256_test.cc
#include "core/base/sha256.h"

#include <string>

#include "gtest/gtest.h"

namespace vrpc {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256::Hex(Sha256::Of("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::Hex(Sha256::Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Sha256 h;
  for (size_t i = 0; i < data.size(); i += 999) h.Update(absl::string_view(data).substr(i, 999));
  EXPECT_EQ(h.Finish(), Sha256::Of(data));
  EXPECT_EQ(Sha256::Of(data).size(), Sha256::kSize);
}

}  // namespace
}  // namespace vrpc
