#include "common/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "common/text.h"

namespace rcptguard {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> json_output{false};

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

// Escapes `v` for a quoted logfmt or JSON string: the result is valid
// UTF-8 whatever `v` holds (octets outside well-formed UTF-8 sequences
// become \u00HH, i.e. the Latin-1 character of that octet), cut at
// kMaxValueBytes.
void AppendEscaped(std::string& out, std::string_view v) {
  const size_t total = v.size();
  if (v.size() > kMaxValueBytes) v = v.substr(0, kMaxValueBytes);
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    const unsigned char b = static_cast<unsigned char>(c);
    if (b >= 0x80) {
      const size_t n = Utf8SequenceLength(v.substr(i));
      if (n == 0) {
        absl::StrAppend(&out, "\\u00", absl::Hex(b, absl::kZeroPad2));
      } else {
        out.append(v.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    if (b == 0x7F) {
      out += "\\u007f";
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  if (total > kMaxValueBytes) absl::StrAppend(&out, "...(", total, " octets)");
}

}  // namespace

void SetMinLogLevel(LogLevel level) {
  min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}
void SetLogJson(bool json) {
  json_output.store(json, std::memory_order_relaxed);
}

void Log(LogLevel level, std::string_view event,
         std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed)) {
    return;
  }
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                          absl::UTCTimeZone());
  std::string line;
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
