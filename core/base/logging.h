// File: core/base/logging.h
//
// A small logging facility (Debian 12's Abseil has no absl/log).
//
//   VRPC_LOG(INFO) << "vm " << name << " ready";
//   VRPC_CHECK(ptr != nullptr) << "broken invariant";   // aborts on failure
//   VRPC_DCHECK(idx < size);                            // debug builds only
//
// CHECK is for our own bugs and broken preconditions only. Input from a peer
// (guest, device, RPC client) must never reach a CHECK: validate it and return
// a Status instead (see docs/architecture.md, "Three error classes").
//
// Thread-safe: each message is formatted privately and handed to the sink in
// one call.
#ifndef VRPC_CORE_BASE_LOGGING_H_
#define VRPC_CORE_BASE_LOGGING_H_

#include <functional>
#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

namespace vrpc {

enum class LogSeverity : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// Messages below this severity are discarded. Default kInfo; the environment
// variable VRPC_LOG_LEVEL (debug|info|warning|error) overrides it at start-up.
// Thread-safe.
void SetMinLogSeverity(LogSeverity severity);
LogSeverity MinLogSeverity();

// Receives each formatted line (without trailing newline). The default sink
// writes to stderr. Passing nullptr restores the default. The sink is called
// under the logger's lock, so it must not log itself. Thread-safe.
using LogSink = std::function<void(LogSeverity, absl::string_view line)>;
void SetLogSink(LogSink sink);

namespace logging_internal {

// Collects one message; emits it from the destructor. kFatal aborts after
// emitting. Not for direct use: use the macros.
class LogMessage {
 public:
  LogMessage(const char* file, int line, LogSeverity severity);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};

// Lets the macros discard the stream expression in a void context.
struct Voidify {
  void operator&(std::ostream&) {}
};

bool ShouldLog(LogSeverity severity);

}  // namespace logging_internal
}  // namespace vrpc

#define VRPC_LOG_SEVERITY_DEBUG ::vrpc::LogSeverity::kDebug
#define VRPC_LOG_SEVERITY_INFO ::vrpc::LogSeverity::kInfo
#define VRPC_LOG_SEVERITY_WARNING ::vrpc::LogSeverity::kWarning
#define VRPC_LOG_SEVERITY_ERROR ::vrpc::LogSeverity::kError
#define VRPC_LOG_SEVERITY_FATAL ::vrpc::LogSeverity::kFatal

// VRPC_LOG(INFO) << ...; severities DEBUG, INFO, WARNING, ERROR, FATAL.
#define VRPC_LOG(severity)                                                  \
  !::vrpc::logging_internal::ShouldLog(VRPC_LOG_SEVERITY_##severity)        \
      ? (void)0                                                             \
      : ::vrpc::logging_internal::Voidify() &                               \
            ::vrpc::logging_internal::LogMessage(__FILE__, __LINE__,        \
                                                 VRPC_LOG_SEVERITY_##severity) \
                .stream()

// Aborts with a message when |condition| is false. For invariants only.
#define VRPC_CHECK(condition)                                                \
  (condition) ? (void)0                                                      \
              : ::vrpc::logging_internal::Voidify() &                        \
                    ::vrpc::logging_internal::LogMessage(                    \
                        __FILE__, __LINE__, ::vrpc::LogSeverity::kFatal)     \
                            .stream()                                        \
                        << "Check failed: " #condition " "

#ifdef NDEBUG
#define VRPC_DCHECK(condition) \
  while (false) VRPC_CHECK(condition)
#else
#define VRPC_DCHECK(condition) VRPC_CHECK(condition)
#endif

#endif  // VRPC_CORE_BASE_LOGGING_H_
