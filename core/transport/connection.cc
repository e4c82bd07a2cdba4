#include "core/transport/connection.h"

namespace vrpc {
namespace transport {

const char* ConnectionEventTypeName(ConnectionEventType type) {
  switch (type) {
    case ConnectionEventType::kConnected:
      return "connected";
    case ConnectionEventType::kReadable:
      return "readable";
    case ConnectionEventType::kCreditBlocked:
      return "credit-blocked";
    case ConnectionEventType::kWritable:
      return "writable";
    case ConnectionEventType::kPeerShutdown:
      return "peer-shutdown";
    case ConnectionEventType::kClosed:
      return "closed";
  }
  return "?";
}

}  // namespace transport
}  // namespace vrpc
