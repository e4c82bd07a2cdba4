// Fuzz target for the toolchain smoke test: parses "key=value;" records with
// Abseil and checks invariants of the result.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace {

// Note: Debian's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is its own type, not absl::string_view.

absl::flat_hash_map<std::string, std::string> ParseRecords(absl::string_view in) {
  absl::flat_hash_map<std::string, std::string> out;
  for (absl::string_view record : absl::StrSplit(in, ';', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(record, absl::MaxSplits('=', 1));
    out[std::string(kv.first)] = std::string(kv.second);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  auto records = ParseRecords(input);
  size_t total = 0;
  for (const auto& [key, value] : records) total += key.size() + value.size();
  // Every byte of a key or value came from the input.
  if (total > size) std::abort();
  // Re-serialising and parsing again is a fixed point.
  std::string again;
  for (const auto& [key, value] : records) {
    if (key.find('=') != std::string::npos) std::abort();
    absl::StrAppend(&again, key, "=", value, ";");
  }
  if (ParseRecords(again).size() != records.size()) std::abort();
  return 0;
}
