// Standard Prometheus process metrics, read from /proc at scrape time:
//
//   process_cpu_seconds_total       user + system CPU time    (/proc/self/stat)
//   process_resident_memory_bytes   resident set size         (/proc/self/stat)
//   process_virtual_memory_bytes    virtual memory size       (/proc/self/stat)
//   process_start_time_seconds      Unix time of the start    (stat + btime)
//   process_open_fds                open file descriptors     (/proc/self/fd)
//   process_max_fds                 RLIMIT_NOFILE soft limit
//   (/proc/self/limits)
//
// the same names and meanings as the Go and Java clients, so stock
// dashboards work. rcptguardd and rcptguard-postfix both export them. A value
// that cannot be read is left out of the scrape (never an exception, never a
// made-up zero).
//
// Thread safety: Collect() and ReadProcessStats() may run concurrently.
#ifndef RCPTGUARD_COMMON_EXPOSITION_PROCESS_COLLECTOR_H_
#define RCPTGUARD_COMMON_EXPOSITION_PROCESS_COLLECTOR_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace rcptguard::exposition {

struct ProcessStats {
  std::optional<double> cpu_seconds;
  std::optional<double> resident_memory_bytes;
  std::optional<double> virtual_memory_bytes;
  std::optional<double> start_time_seconds;
  std::optional<double> open_fds;
  std::optional<double> max_fds;
};

// Reads the stats of "<proc_root>/self". `clock_ticks_per_second` and
// `page_size` default to the running system's.
ProcessStats ReadProcessStats(std::string_view proc_root,
                              long clock_ticks_per_second = 0,
                              long page_size = 0);

class ProcessCollector : public prometheus::Collectable {
 public:
  explicit ProcessCollector(std::string proc_root = "/proc")
      : proc_root_(std::move(proc_root)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::string proc_root_;
};

}  // namespace rcptguard::exposition

#endif  // RCPTGUARD_COMMON_EXPOSITION_PROCESS_COLLECTOR_H_
