// File: examples/echo/echo_service.cc
#include "examples/echo/echo_service.h"

#include "absl/strings/str_cat.h"

namespace vrpc {
namespace echo_example {

absl::Status EchoServiceImpl::Unary(rpc::ServerContext* context, const echo::EchoRequest* request,
                                    echo::EchoReply* reply) {
  reply->set_payload(request->payload());
  reply->set_sequence(0);
  return absl::OkStatus();
}

absl::Status EchoServiceImpl::ServerStream(rpc::ServerContext* context,
                                           const echo::EchoRequest* request,
                                           rpc::ServerWriter<echo::EchoReply>* writer) {
  if (request->count() > kMaxStreamReplies) {
    return absl::InvalidArgumentError(
        absl::StrCat("count ", request->count(), " is over the limit of ", kMaxStreamReplies));
  }
  echo::EchoReply reply;
  reply.set_payload(request->payload());
  for (uint32_t i = 0; i < request->count(); ++i) {
    reply.set_sequence(i);
    if (!writer->Write(reply)) return absl::CancelledError("the client went away");
  }
  return absl::OkStatus();
}

absl::Status EchoServiceImpl::ClientStream(rpc::ServerContext* context,
                                           rpc::ServerReader<echo::EchoRequest>* reader,
                                           echo::EchoReply* reply) {
  echo::EchoRequest request;
  std::string all;
  uint64_t n = 0;
  while (reader->Read(&request)) {
    if (all.size() + request.payload().size() > kMaxAccumulated) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the payloads exceed ", kMaxAccumulated, " bytes"));
    }
    all += request.payload();
    ++n;
  }
  reply->set_payload(std::move(all));
  reply->set_sequence(n);
  return absl::OkStatus();
}

absl::Status EchoServiceImpl::Bidi(
    rpc::ServerContext* context,
    rpc::ServerReaderWriter<echo::EchoReply, echo::EchoRequest>* stream) {
  echo::EchoRequest request;
  echo::EchoReply reply;
  uint64_t n = 0;
  while (stream->Read(&request)) {
    reply.set_payload(request.payload());
    reply.set_sequence(n++);
    if (!stream->Write(reply)) return absl::CancelledError("the client went away");
  }
  return absl::OkStatus();
}

std::string Pattern(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

}  // namespace echo_example
}  // namespace vrpc
