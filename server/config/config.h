// Loading and validating the server configuration.
//
// The configuration is one text-format rcptguard.v1.ServerConfig. LoadConfig
// parses it, fills in defaults, resolves relative paths against the config
// file's folder, and validates it as a whole: the first problem comes back
// as InvalidArgument naming the field and the reason, e.g.
//   "domains[1].name: invalid domain: ..." or
//   "/etc/rcptguard/config.textproto:12:3: Message type ... has no field ..."
//
// Thread safety: pure functions, safe to call from any thread.
#ifndef RCPTGUARD_SERVER_CONFIG_CONFIG_H_
#define RCPTGUARD_SERVER_CONFIG_CONFIG_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/io/tokenizer.h"
#include "rcptguard/v1/config.pb.h"

namespace rcptguard::service {

// Collects the first text-format parse error with its position,
// "SOURCE:LINE:COLUMN: message", for config and mapping files.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit FirstErrorCollector(std::string_view source) : source_(source) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override;
  void AddWarning(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}
  const std::string& error() const { return error_; }

 private:
  std::string source_;
  std::string error_;
};

// Defaults: ApplyDefaults (called by ParseConfig) is the one place that
// fills them in; the rest of the server reads the config as filled in and
// holds no fallbacks of its own (an empty duration reads as zero, "off").
inline constexpr char kDefaultListenAddress[] = "127.0.0.1:50051";
inline constexpr char kDefaultMetricsListenAddress[] = "127.0.0.1:9464";
inline constexpr uint32_t kDefaultMaxEdgeIds = 64;
inline constexpr char kDefaultWatchInterval[] = "2s";
inline constexpr char kDefaultStaleAfter[] = "24h";
inline constexpr uint32_t kDefaultMaxRecipients = 1000;
inline constexpr uint32_t kDefaultMaxAddressLength = 1024;
inline constexpr uint32_t kDefaultMaxMessageBytes = 1 << 20;
inline constexpr uint32_t kDefaultMaxConcurrentStreams = 100;
inline constexpr uint32_t kDefaultShutdownGraceMs = 1000;
inline constexpr uint32_t kDefaultDrainTimeoutMs = 10000;
inline constexpr double kDefaultMaxShrink = 0.10;
inline constexpr uint32_t kDefaultRateBurstSeconds = 2;
inline constexpr uint32_t kDefaultRecipientsPerSecond = 200000;
inline constexpr uint32_t kDefaultMaxStreamBufferBytes = 1 << 20;
inline constexpr uint64_t kDefaultMaxBufferedResponseBytes = uint64_t{256}
                                                             << 20;
inline constexpr uint32_t kDefaultMaxStreamsPerPeer = 100;
inline constexpr uint32_t kDefaultMaxStreams = 1000;
inline constexpr uint64_t kDefaultGrpcMemoryBytes = uint64_t{1} << 30;

// Upper bounds that ValidateConfig enforces (see config.proto for each
// field's full range). Values past them are mistakes, and some would
// overflow or exhaust memory at start-up (a uint32 cast to int, a vector
// sized by the value).
inline constexpr uint32_t kMaxShardBits = 16;
inline constexpr uint32_t kMaxRecipientsLimit = 100000;
inline constexpr uint32_t kMaxConcurrentStreamsLimit = 100000;
inline constexpr uint32_t kMaxRecipientsPerSecondLimit = 10000000;
inline constexpr uint32_t kMaxShutdownMs = 600000;
inline constexpr uint32_t kMaxEdgeIdsLimit = 10000;
// harvest.dsn_max_recipients, harvest.rules[].min_unknown and min_total.
inline constexpr uint32_t kMaxHarvestCount = 1000000;

// True for listen addresses (host:port, [v6]:port, ipv4:host:port) on a
// loopback host (common/net.h): 127.0.0.0/8, ::1, localhost.
bool IsLoopbackListenAddress(std::string_view address);

// Parses text-format `text` (named `source_name` in errors), applies
// defaults, resolves relative paths against `base_dir`, and validates.
absl::StatusOr<v1::ServerConfig> ParseConfig(std::string_view text,
                                             std::string_view source_name,
                                             std::string_view base_dir);

// Reads and parses the file at `path` (NotFound naming it if it does not
// exist). The file is read with ReadRegularFile (common/file.h): a
// FIFO, a device or a file above kMaxConfigFileBytes (16 MiB) is refused
// with InvalidArgument at once, so `--check_config` never blocks on it.
absl::StatusOr<v1::ServerConfig> LoadConfig(const std::string& path);

// Validates an already defaulted config. Exposed for tests.
absl::Status ValidateConfig(const v1::ServerConfig& config);

// `d` in whole milliseconds as gRPC's int channel arguments take them
// (GRPC_ARG_MAX_CONNECTION_IDLE_MS, GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS),
// clamped to [0, INT_MAX] instead of wrapping. ValidateConfig bounds every
// duration field far below INT_MAX ms (24.8 days), so a validated config is
// never clamped; this only keeps an unvalidated one from wrapping.
int DurationMillisForGrpc(absl::Duration d);

// The value of a duration field that ValidateConfig has checked (e.g.
// "10s"); `fallback` when it is empty or, for a config that was never
// validated, does not parse.
absl::Duration ConfigDuration(const std::string& text,
                              absl::Duration fallback = absl::ZeroDuration());

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_CONFIG_CONFIG_H_
