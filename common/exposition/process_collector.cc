#include "common/exposition/process_collector.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/strings.h"

namespace rcptguard::exposition {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(out).str();
}

std::optional<double> ParseNumber(absl::string_view text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value)) return std::nullopt;
  return value;
}

// Seconds since the epoch at boot, from the "btime" line of /proc/stat.
std::optional<double> BootTime(const std::string& proc_root) {
  std::optional<std::string> stat = ReadFile(proc_root + "/stat");
  if (!stat) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      return ParseNumber(absl::StripAsciiWhitespace(line));
    }
  }
  return std::nullopt;
}

// The soft "Max open files" limit from /proc/self/limits. "unlimited" is
// left out, as the Go client does.
std::optional<double> MaxFds(const std::string& proc_root) {
  std::optional<std::string> limits = ReadFile(proc_root + "/self/limits");
  if (!limits) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*limits, '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.empty()) return std::nullopt;
    return ParseNumber(fields[0]);
  }
  return std::nullopt;
}

std::optional<double> OpenFds(const std::string& proc_root) {
  DIR* dir = opendir((proc_root + "/self/fd").c_str());
  if (dir == nullptr) return std::nullopt;
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    ++count;
  }
  closedir(dir);
  // Includes the descriptor opendir held while listing, as the Go client's
  // count does.
  return count;
}

}  // namespace

ProcessStats ReadProcessStats(std::string_view proc_root_view,
                              long clock_ticks_per_second, long page_size) {
  const std::string proc_root(proc_root_view);
  if (clock_ticks_per_second <= 0)
    clock_ticks_per_second = sysconf(_SC_CLK_TCK);
  if (page_size <= 0) page_size = sysconf(_SC_PAGESIZE);
  ProcessStats stats;
  stats.open_fds = OpenFds(proc_root);
  stats.max_fds = MaxFds(proc_root);

  std::optional<std::string> stat = ReadFile(proc_root + "/self/stat");
  if (!stat || clock_ticks_per_second <= 0) return stats;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // split what follows the last ')'. fields[0] is field 3 of proc(5).
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return stats;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(paren + 1),
                     absl::ByAnyChar(" \n"), absl::SkipEmpty());
  auto field = [&](size_t number) -> std::optional<double> {
    if (number < 3 || number - 3 >= fields.size()) return std::nullopt;
    return ParseNumber(fields[number - 3]);
  };
  const double ticks = static_cast<double>(clock_ticks_per_second);
  std::optional<double> utime = field(14), stime = field(15);
  if (utime && stime) stats.cpu_seconds = (*utime + *stime) / ticks;
  stats.virtual_memory_bytes = field(23);
  if (std::optional<double> rss = field(24); rss && page_size > 0) {
    stats.resident_memory_bytes = *rss * static_cast<double>(page_size);
  }
  std::optional<double> start_ticks = field(22);
  std::optional<double> boot = BootTime(proc_root);
  if (start_ticks && boot)
    stats.start_time_seconds = *boot + *start_ticks / ticks;
  return stats;
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  const ProcessStats stats = ReadProcessStats(proc_root_);
  std::vector<prometheus::MetricFamily> families;
  auto add = [&](const char* name, const char* help,
                 prometheus::MetricType type,
                 const std::optional<double>& value) {
    if (!value) return;
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = type;
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = *value;
    } else {
      metric.gauge.value = *value;
    }
    family.metric.push_back(std::move(metric));
    families.push_back(std::move(family));
  };
  using prometheus::MetricType;
  add("process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds.", MetricType::Counter,
      stats.cpu_seconds);
  add("process_resident_memory_bytes", "Resident memory size in bytes.",
      MetricType::Gauge, stats.resident_memory_bytes);
  add("process_virtual_memory_bytes", "Virtual memory size in bytes.",
      MetricType::Gauge, stats.virtual_memory_bytes);
  add("process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.",
      MetricType::Gauge, stats.start_time_seconds);
  add("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
      stats.open_fds);
  add("process_max_fds", "Maximum number of open file descriptors.",
      MetricType::Gauge, stats.max_fds);
  return families;
}

}  // namespace rcptguard::exposition
