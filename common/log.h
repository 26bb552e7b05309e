// Structured, one-line-per-event logging to stderr.
//
//   LogInfo("directory_loaded", {{"version", v}, {"addresses", n}});
// prints
//   ts=2026-11-29T04:50:00.123Z level=info event=directory_loaded version=...
//   addresses=...
//
// Values containing spaces, quotes or '=' are quoted. Never log a full
// recipient address at info level: log its domain or fingerprint.
//
// Under systemd, when stderr is the journal (JOURNAL_STREAM names stderr's
// device and inode, systemd.exec(5)), each line starts with its syslog
// priority as sd-daemon(3) prefixes it: <3> error, <4> warning, <6> info,
// <7> debug. journald strips the prefix and stores the priority, so
// `journalctl -p err -u rcptguardd` shows the errors.
//
// Thread safety: safe to call from any thread; each line is written with one
// write(2) so lines from different threads do not interleave.
#ifndef RCPTGUARD_COMMON_LOG_H_
#define RCPTGUARD_COMMON_LOG_H_

#include <atomic>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rcptguard {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, absl::string_view v)
      : key(k), value(v.data(), v.size()) {}
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  LogField(std::string_view k, T v) : key(k), value(absl::StrCat(v)) {}
  std::string_view key;
  std::string value;
};

// Lines below this level are dropped. Default kInfo.
void SetMinLogLevel(LogLevel level);
// Emit JSON objects instead of key=value pairs.
void SetLogJson(bool json);

// Syslog priority prefixes on or off, overriding the JOURNAL_STREAM
// detection (tests).
void SetSyslogPrefix(bool on);
// "<3>" etc. for `level` when prefixes are on, else "": for the few lines a
// program writes to stderr itself (fatal start-up errors).
std::string_view SyslogPrefix(LogLevel level);

void Log(LogLevel level, std::string_view event,
         std::initializer_list<LogField> fields = {});

inline void LogInfo(std::string_view event,
                    std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, event, fields);
}
inline void LogWarning(std::string_view event,
                       std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarning, event, fields);
}
inline void LogError(std::string_view event,
                     std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, event, fields);
}

// Lets at most one log line through per period and counts the ones held
// back, for events a client can cause in a loop (malformed requests,
// libprotobuf's own warnings). Usually a function-local static.
//
// Thread safety: Allow() may be called from any thread.
class LogLimiter {
 public:
  explicit LogLimiter(int64_t period_seconds) : period_(period_seconds) {}

  // True when a line may be written now; then *left_out is how many were
  // held back since the last one let through.
  bool Allow(int64_t* left_out);

 private:
  const int64_t period_;
  std::atomic<int64_t> last_window_{0};
  std::atomic<int64_t> held_{0};
};

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_LOG_H_
