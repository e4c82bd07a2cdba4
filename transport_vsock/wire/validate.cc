#include "transport_vsock/wire/validate.h"

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace vsock {
namespace {

HeaderCheck Drop(absl::string_view why) {
  return {HeaderVerdict::kDrop, absl::InvalidArgumentError(why)};
}

HeaderCheck Reset(const Header& h, absl::Status why) {
  // Never answer an RST with an RST: two peers could ping-pong forever.
  const HeaderVerdict v =
      h.op_code() == Op::kRst ? HeaderVerdict::kDrop : HeaderVerdict::kReset;
  return {v, std::move(why)};
}

bool KnownType(uint16_t type) {
  return type == static_cast<uint16_t>(SocketType::kStream) ||
         type == static_cast<uint16_t>(SocketType::kSeqpacket);
}

}  // namespace

HeaderCheck CheckHeader(const Header& h, const AddressPolicy& policy) {
  if ((h.src_cid >> 32) != 0 || (h.dst_cid >> 32) != 0) {
    return Drop("reserved upper 32 CID bits set");
  }
  if (h.dst_cid != policy.local_cid) {
    return Drop(absl::StrCat("dst_cid ", h.dst_cid, " is not ours (", policy.local_cid, ")"));
  }
  if (h.src_cid != policy.peer_cid) {
    return Drop(absl::StrCat("src_cid ", h.src_cid, " is not the peer (", policy.peer_cid, ")"));
  }
  if (h.op == static_cast<uint16_t>(Op::kInvalid) || h.op > kMaxOp) {
    return Reset(h, absl::InvalidArgumentError(absl::StrCat("unknown op ", h.op)));
  }
  if (!KnownType(h.type)) {
    return Reset(h, absl::InvalidArgumentError(absl::StrCat("unknown type ", h.type)));
  }
  if (h.src_port == kPortAny || h.dst_port == kPortAny) {
    return Reset(h, absl::InvalidArgumentError("reserved port VMADDR_PORT_ANY"));
  }
  if (h.len > policy.max_payload) {
    return Reset(h, absl::ResourceExhaustedError(absl::StrCat(
                        "payload len ", h.len, " exceeds ", policy.max_payload)));
  }
  if (h.len != 0 && h.op_code() != Op::kRw) {
    return Reset(h, absl::InvalidArgumentError(
                        absl::StrCat(OpName(h.op), " carries a payload of ", h.len)));
  }
  return {HeaderVerdict::kAccept, absl::OkStatus()};
}

}  // namespace vsock
}  // namespace vrpc
