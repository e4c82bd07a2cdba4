#include "core/base/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vrpc {
namespace {

LogSeverity SeverityFromEnv() {
  const char* env = std::getenv("VRPC_LOG_LEVEL");
  if (env == nullptr) return LogSeverity::kInfo;
  if (std::strcmp(env, "debug") == 0) return LogSeverity::kDebug;
  if (std::strcmp(env, "warning") == 0) return LogSeverity::kWarning;
  if (std::strcmp(env, "error") == 0) return LogSeverity::kError;
  return LogSeverity::kInfo;
}

std::atomic<int>& MinSeverity() {
  static std::atomic<int> min{static_cast<int>(SeverityFromEnv())};
  return min;
}

// std::mutex (constant-initialized) rather than absl::Mutex, so ThreadSanitizer
// sees it: Debian's Abseil is not TSan-instrumented.
std::mutex sink_mu;
LogSink* custom_sink = nullptr;  // guarded by sink_mu

char SeverityLetter(LogSeverity s) {
  switch (s) {
    case LogSeverity::kDebug: return 'D';
    case LogSeverity::kInfo: return 'I';
    case LogSeverity::kWarning: return 'W';
    case LogSeverity::kError: return 'E';
    case LogSeverity::kFatal: return 'F';
  }
  return '?';
}

void WriteToStderr(absl::string_view line) {
  std::string out(line);
  out.push_back('\n');
  // One write() per line keeps lines from different threads whole.
  (void)!::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace

void SetMinLogSeverity(LogSeverity severity) {
  MinSeverity().store(static_cast<int>(severity), std::memory_order_relaxed);
}

LogSeverity MinLogSeverity() {
  return static_cast<LogSeverity>(MinSeverity().load(std::memory_order_relaxed));
}

void SetLogSink(LogSink sink) {
  std::lock_guard<std::mutex> lock(sink_mu);
  delete custom_sink;
  custom_sink = sink ? new LogSink(std::move(sink)) : nullptr;
}

namespace logging_internal {

bool ShouldLog(LogSeverity severity) {
  return severity == LogSeverity::kFatal || severity >= MinLogSeverity();
}

LogMessage::LogMessage(const char* file, int line, LogSeverity severity)
    : severity_(severity) {
  const char* base = std::strrchr(file, '/');
  stream_ << SeverityLetter(severity) << ' '
          << absl::FormatTime("%H:%M:%E6S", absl::Now(), absl::LocalTimeZone())
          << ' ' << (base ? base + 1 : file) << ':' << line << "] ";
}

LogMessage::~LogMessage() {
  const std::string line = stream_.str();
  bool wrote_stderr = false;
  {
    std::lock_guard<std::mutex> lock(sink_mu);
    if (custom_sink != nullptr) {
      (*custom_sink)(severity_, line);
    } else {
      WriteToStderr(line);
      wrote_stderr = true;
    }
  }
  if (severity_ == LogSeverity::kFatal) {
    if (!wrote_stderr) WriteToStderr(line);
    std::abort();
  }
}

}  // namespace logging_internal
}  // namespace vrpc
