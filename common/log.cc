#include "common/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "common/text.h"

namespace rcptguard {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> json_output{false};
// -1: not decided yet (JOURNAL_STREAM is looked at on first use).
std::atomic<int> syslog_prefix{-1};

// systemd.exec(5): JOURNAL_STREAM is "DEVICE:INODE" of the stream it
// connected to stderr; only when they match is stderr still the journal
// (not a file the process or a child redirected it to).
bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st;
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

bool SyslogPrefixOn() {
  int on = syslog_prefix.load(std::memory_order_relaxed);
  if (on < 0) {
    on = StderrIsJournal() ? 1 : 0;
    int expected = -1;
    if (!syslog_prefix.compare_exchange_strong(expected, on,
                                               std::memory_order_relaxed)) {
      on = expected;
    }
  }
  return on == 1;
}

constexpr std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// Values longer than this are cut (a peer or identity string may be of any
// length).
constexpr size_t kMaxValueBytes = 1024;

bool NeedsQuotes(std::string_view v) {
  if (v.empty() || v.size() > kMaxValueBytes) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' ||
        static_cast<unsigned char>(c) < 0x20 ||
        static_cast<unsigned char>(c) >= 0x7F) {
      return true;
    }
  }
  return false;
}

void AppendEscaped(std::string& out, std::string_view v) {
  AppendJsonEscaped(out, v, kMaxValueBytes);
}

}  // namespace

void SetMinLogLevel(LogLevel level) {
  min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}
void SetLogJson(bool json) {
  json_output.store(json, std::memory_order_relaxed);
}

void SetSyslogPrefix(bool on) {
  syslog_prefix.store(on ? 1 : 0, std::memory_order_relaxed);
}

std::string_view SyslogPrefix(LogLevel level) {
  if (!SyslogPrefixOn()) return "";
  switch (level) {
    case LogLevel::kDebug:
      return "<7>";
    case LogLevel::kInfo:
      return "<6>";
    case LogLevel::kWarning:
      return "<4>";
    case LogLevel::kError:
      return "<3>";
  }
  return "<6>";
}

void Log(LogLevel level, std::string_view event,
         std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed)) {
    return;
  }
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                          absl::UTCTimeZone());
  std::string line(SyslogPrefix(level));
  if (json_output.load(std::memory_order_relaxed)) {
    absl::StrAppend(&line, "{\"ts\":\"", ts, "\",\"level\":\"",
                    ToAbsl(LevelName(level)), "\",\"event\":\"");
    AppendEscaped(line, event);
    line += '"';
    for (const LogField& f : fields) {
      line += ",\"";
      AppendEscaped(line, f.key);
      line += "\":\"";
      AppendEscaped(line, f.value);
      line += '"';
    }
    line += "}\n";
  } else {
    absl::StrAppend(&line, "ts=", ts, " level=", ToAbsl(LevelName(level)),
                    " event=", ToAbsl(event));
    for (const LogField& f : fields) {
      absl::StrAppend(&line, " ", ToAbsl(f.key), "=");
      if (NeedsQuotes(f.value)) {
        line += '"';
        AppendEscaped(line, f.value);
        line += '"';
      } else {
        line += f.value;
      }
    }
    line += '\n';
  }
  // One write per line keeps lines whole across threads.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

bool LogLimiter::Allow(int64_t* left_out) {
  const int64_t window = absl::ToUnixSeconds(absl::Now()) / period_;
  int64_t last = last_window_.load(std::memory_order_relaxed);
  if (window == last || !last_window_.compare_exchange_strong(
                            last, window, std::memory_order_relaxed)) {
    held_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *left_out = held_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace rcptguard
