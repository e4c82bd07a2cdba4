// File: guest_agent/policy.cc
#include "guest_agent/policy.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/transport/address.h"

namespace vrpc {
namespace guest_agent {
namespace {

constexpr absl::string_view kAgentPrefix = "/vrpc.agent.Agent/";
constexpr absl::string_view kHealthPrefix = "/grpc.health.v1.Health/";
const char* const kMethods[] = {"Exec", "PutFile",    "GetFile",  "Stat",
                                "List", "SystemInfo", "Shutdown", "Forward"};

bool KnownMethod(absl::string_view name) {
  for (const char* m : kMethods) {
    if (name == m) return true;
  }
  return false;
}

}  // namespace

Policy::Policy() : allowed_{"SystemInfo", "Stat", "List", "GetFile"}, cids_{2} {}

absl::StatusOr<Policy> Policy::Parse(absl::string_view text) {
  Policy p;
  p.allowed_.clear();
  bool cids_given = false;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> w = absl::StrSplit(line, absl::ByAnyChar(" \t\r"),
                                                      absl::SkipEmpty());
    if (w.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("policy line ", line_no, ": ", why));
    };
    if (w[0] == "allow" && w.size() == 2) {
      if (w[1] == "*") {
        for (const char* m : kMethods) p.allowed_.insert(m);
      } else if (KnownMethod(w[1])) {
        p.allowed_.insert(std::string(w[1]));
      } else {
        return bad(absl::StrCat("unknown method \"", w[1], "\""));
      }
    } else if (w[0] == "allow-cid" && w.size() == 2) {
      uint32_t cid = 0;
      if (!absl::SimpleAtoi(w[1], &cid)) return bad("allow-cid takes a number");
      if (!cids_given) p.cids_.clear();
      cids_given = true;
      p.cids_.insert(cid);
    } else if (w[0] == "allow-unix" && w.size() == 1) {
      p.allow_unix_ = true;
    } else if (w[0] == "limit" && w.size() == 3) {
      uint64_t v = 0;
      if (!absl::SimpleAtoi(w[2], &v) || v == 0) return bad("a limit is a positive number");
      if (w[1] == "max_message_bytes" && v <= (uint64_t{1} << 30)) {
        p.limits_.max_message_bytes = v;
      } else if (w[1] == "max_file_bytes") {
        p.limits_.max_file_bytes = v;
      } else if (w[1] == "max_concurrent_calls" && v <= 100000) {
        p.limits_.max_concurrent_calls = static_cast<uint32_t>(v);
      } else if (w[1] == "max_exec_processes" && v <= 100000) {
        p.limits_.max_exec_processes = static_cast<uint32_t>(v);
      } else if (w[1] == "max_list_entries" && v <= 10000000) {
        p.limits_.max_list_entries = static_cast<uint32_t>(v);
      } else {
        return bad(absl::StrCat("unknown or out-of-range limit \"", w[1], "\""));
      }
    } else {
      return bad(absl::StrCat("cannot read \"", absl::StripAsciiWhitespace(line), "\""));
    }
  }
  return p;
}

absl::StatusOr<Policy> Policy::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read policy file ", path));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<Policy> p = Parse(text.str());
  if (!p.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", p.status().message()));
  return p;
}

absl::Status Policy::Authorize(const std::string& method) const {
  absl::string_view m = method;
  if (absl::StartsWith(m, kHealthPrefix)) return absl::OkStatus();
  if (absl::ConsumePrefix(&m, kAgentPrefix) && allowed_.count(std::string(m)) > 0) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat(method, " is not allowed by the guest agent's policy"));
}

absl::Status Policy::AcceptPeer(const std::string& peer) const {
  absl::StatusOr<transport::Address> a = transport::ParseAddress(peer);
  if (a.ok() && a->kind == transport::Address::Kind::kVsock && cids_.count(a->cid) > 0) {
    return absl::OkStatus();
  }
  if (a.ok() && a->kind == transport::Address::Kind::kUnix && allow_unix_) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("peer ", peer, " is not allowed to connect"));
}

}  // namespace guest_agent
}  // namespace vrpc
