// File: core/transport/address.cc
#include "core/transport/address.h"

#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vrpc {
namespace transport {
namespace {

// sockaddr_un::sun_path holds 108 bytes, NUL included.
constexpr size_t kMaxUnixPath = 107;

absl::Status Invalid(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("address \"", text, "\": ", why));
}

absl::StatusOr<uint32_t> ParsePort(absl::string_view text, absl::string_view field) {
  uint32_t port = 0;
  if (field.empty() || !absl::SimpleAtoi(field, &port) || field[0] == '+' || field[0] == '-') {
    return Invalid(text, absl::StrCat("port \"", field, "\" is not a 32-bit number"));
  }
  return port;
}

absl::StatusOr<uint64_t> ParseCid(absl::string_view text, absl::string_view field) {
  if (field == "any") return kCidAny;
  if (field == "hypervisor") return kCidHypervisor;
  if (field == "local") return kCidLocal;
  if (field == "host") return kCidHost;
  uint64_t cid = 0;
  if (field.empty() || field[0] == '+' || field[0] == '-' || !absl::SimpleAtoi(field, &cid) ||
      cid > std::numeric_limits<uint32_t>::max()) {
    return Invalid(text, absl::StrCat("CID \"", field, "\" is not a 32-bit number or any, "
                                      "hypervisor, local, host"));
  }
  return cid;
}

absl::Status CheckPath(absl::string_view text, absl::string_view path) {
  if (path.empty()) return Invalid(text, "empty socket path");
  if (path.size() > kMaxUnixPath) {
    return Invalid(text, absl::StrCat("socket path is ", path.size(), " bytes; at most ",
                                      kMaxUnixPath, " fit in sockaddr_un"));
  }
  return absl::OkStatus();
}

// Splits |rest| into a path and |n| ':'-separated fields taken from the right.
bool SplitFromRight(absl::string_view rest, int n, absl::string_view* path,
                    std::vector<absl::string_view>* fields) {
  fields->assign(n, absl::string_view());
  for (int i = n - 1; i >= 0; --i) {
    size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return false;
    (*fields)[i] = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  *path = rest;
  return true;
}

}  // namespace

const char* AddressKindName(Address::Kind kind) {
  switch (kind) {
    case Address::Kind::kUnix: return "unix";
    case Address::Kind::kVsock: return "vsock";
    case Address::Kind::kHvsock: return "hvsock";
    case Address::Kind::kVirtioUser: return "virtio-user";
    case Address::Kind::kVhostUser: return "vhost-user";
    case Address::Kind::kLoopback: return "loopback";
    case Address::Kind::kUio: return "uio";
    case Address::Kind::kVfio: return "vfio";
    case Address::Kind::kVsockSeqpacket: return "vsock-seqpacket";
  }
  return "?";
}

absl::StatusOr<Address> ParseAddress(absl::string_view text) {
  size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return Invalid(text, "expected SCHEME:..., e.g. unix:/run/x.sock or vsock:3:5000");
  }
  absl::string_view scheme = text.substr(0, colon);
  absl::string_view rest = text.substr(colon + 1);
  Address a;
  absl::string_view path;
  std::vector<absl::string_view> f;
  if (scheme == "unix") {
    a.kind = Address::Kind::kUnix;
    if (absl::Status s = CheckPath(text, rest); !s.ok()) return s;
    a.path = std::string(rest);
    return a;
  }
  if (scheme == "loopback") {
    a.kind = Address::Kind::kLoopback;
    absl::StatusOr<uint32_t> port = ParsePort(text, rest);
    if (!port.ok()) return port.status();
    a.port = *port;
    return a;
  }
  if (scheme == "vsock" || scheme == "vsock-seqpacket") {
    a.kind = scheme == "vsock" ? Address::Kind::kVsock : Address::Kind::kVsockSeqpacket;
    size_t sep = rest.find(':');
    if (sep == absl::string_view::npos || sep != rest.rfind(':')) {
      return Invalid(text, absl::StrCat("expected ", scheme, ":CID:PORT"));
    }
    f = {rest.substr(0, sep), rest.substr(sep + 1)};
  } else if (scheme == "hvsock") {
    a.kind = Address::Kind::kHvsock;
    if (!SplitFromRight(rest, 1, &path, &f)) return Invalid(text, "expected hvsock:UDS_PATH:PORT");
    f.insert(f.begin(), absl::string_view());
  } else if (scheme == "virtio-user" || scheme == "vhost-user" || scheme == "uio" ||
             scheme == "vfio") {
    a.kind = scheme == "virtio-user" ? Address::Kind::kVirtioUser
             : scheme == "vhost-user" ? Address::Kind::kVhostUser
             : scheme == "uio"        ? Address::Kind::kUio
                                      : Address::Kind::kVfio;
    if (!SplitFromRight(rest, 2, &path, &f)) {
      return Invalid(text, absl::StrCat("expected ", scheme, ":SOCK_PATH:CID:PORT"));
    }
  } else {
    return Invalid(text, absl::StrCat("unknown scheme \"", scheme,
                                      "\" (unix, vsock, vsock-seqpacket, hvsock, virtio-user, "
                                      "vhost-user, uio, vfio, loopback)"));
  }
  if (a.kind != Address::Kind::kVsock && a.kind != Address::Kind::kVsockSeqpacket) {
    if (absl::Status s = CheckPath(text, path); !s.ok()) return s;
    a.path = std::string(path);
  }
  if (a.kind != Address::Kind::kHvsock) {
    absl::StatusOr<uint64_t> cid = ParseCid(text, f[0]);
    if (!cid.ok()) return cid.status();
    a.cid = *cid;
  }
  absl::StatusOr<uint32_t> port = ParsePort(text, f[1]);
  if (!port.ok()) return port.status();
  a.port = *port;
  return a;
}

std::string FormatAddress(const Address& a) {
  switch (a.kind) {
    case Address::Kind::kUnix: return absl::StrCat("unix:", a.path);
    case Address::Kind::kLoopback: return absl::StrCat("loopback:", a.port);
    case Address::Kind::kVsock:
    case Address::Kind::kVsockSeqpacket:
      return absl::StrCat(AddressKindName(a.kind), ":", a.cid, ":", a.port);
    case Address::Kind::kHvsock: return absl::StrCat("hvsock:", a.path, ":", a.port);
    case Address::Kind::kVirtioUser:
    case Address::Kind::kVhostUser:
    case Address::Kind::kUio:
    case Address::Kind::kVfio:
      return absl::StrCat(AddressKindName(a.kind), ":", a.path, ":", a.cid, ":", a.port);
  }
  return "";
}

}  // namespace transport
}  // namespace vrpc
