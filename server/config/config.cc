#include "server/config/config.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/net.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "server/address/address.h"
#include "server/config/harvest_proto.h"

namespace rcptguard::service {
namespace {

std::string ResolvePath(std::string_view base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return absl::StrCat(ToAbsl(base_dir), "/", path);
}

void ApplyDefaults(v1::ServerConfig& config, std::string_view base_dir) {
  if (config.listen_address().empty()) {
    config.set_listen_address(kDefaultListenAddress);
  }
  v1::Limits* limits = config.mutable_limits();
  if (limits->max_recipients_per_request() == 0) {
    limits->set_max_recipients_per_request(kDefaultMaxRecipients);
  }
  if (limits->max_address_length() == 0) {
    limits->set_max_address_length(kDefaultMaxAddressLength);
  }
  if (limits->max_message_bytes() == 0) {
    limits->set_max_message_bytes(kDefaultMaxMessageBytes);
  }
  if (limits->max_concurrent_streams() == 0) {
    limits->set_max_concurrent_streams(kDefaultMaxConcurrentStreams);
  }
  if (limits->rate_burst_seconds() == 0) {
    limits->set_rate_burst_seconds(kDefaultRateBurstSeconds);
  }
  if (!limits->has_recipients_per_second_per_identity() && config.has_tls()) {
    limits->set_recipients_per_second_per_identity(kDefaultRecipientsPerSecond);
  }
  if (limits->max_stream_buffer_bytes() == 0) {
    limits->set_max_stream_buffer_bytes(kDefaultMaxStreamBufferBytes);
  }
  if (limits->max_buffered_response_bytes() == 0) {
    limits->set_max_buffered_response_bytes(kDefaultMaxBufferedResponseBytes);
  }
  if (limits->max_streams_per_peer() == 0) {
    limits->set_max_streams_per_peer(kDefaultMaxStreamsPerPeer);
  }
  if (limits->max_streams() == 0) limits->set_max_streams(kDefaultMaxStreams);
  if (limits->grpc_memory_bytes() == 0) {
    limits->set_grpc_memory_bytes(kDefaultGrpcMemoryBytes);
  }
  if (limits->grpc_threads() == 0) limits->set_grpc_threads(1);
  if (limits->idle_timeout().empty()) limits->set_idle_timeout("5m");
  if (limits->max_connection_age().empty()) {
    limits->set_max_connection_age("0s");
  }
  if (limits->max_connection_age_grace().empty()) {
    limits->set_max_connection_age_grace("30s");
  }
  if (limits->handshake_timeout().empty()) {
    limits->set_handshake_timeout("10s");
  }
  if (config.has_tls()) {
    v1::Tls* tls = config.mutable_tls();
    tls->set_cert_file(ResolvePath(base_dir, tls->cert_file()));
    tls->set_key_file(ResolvePath(base_dir, tls->key_file()));
    tls->set_client_ca_file(ResolvePath(base_dir, tls->client_ca_file()));
    if (tls->reload_interval().empty()) tls->set_reload_interval("10s");
    v1::Access* access = config.mutable_access();
    if (access->validate().empty()) access->add_validate("*");
    if (access->read().empty()) access->add_read("*");
  }
  v1::Metrics* metrics = config.mutable_metrics();
  if (metrics->listen_address().empty()) {
    metrics->set_listen_address(kDefaultMetricsListenAddress);
  }
  if (metrics->max_edge_ids() == 0) {
    metrics->set_max_edge_ids(kDefaultMaxEdgeIds);
  }
  v1::Shutdown* shutdown = config.mutable_shutdown();
  if (!shutdown->has_grace_ms())
    shutdown->set_grace_ms(kDefaultShutdownGraceMs);
  if (!shutdown->has_drain_timeout_ms()) {
    shutdown->set_drain_timeout_ms(kDefaultDrainTimeoutMs);
  }
  v1::DirectorySource* dir = config.mutable_directory();
  for (std::string& file : *dir->mutable_ldif_files()) {
    file = ResolvePath(base_dir, file);
  }
  dir->set_snapshot_file(ResolvePath(base_dir, dir->snapshot_file()));
  dir->set_force_reload_file(ResolvePath(base_dir, dir->force_reload_file()));
  if (!dir->has_max_shrink()) dir->set_max_shrink(kDefaultMaxShrink);
  if (dir->watch_interval().empty()) {
    dir->set_watch_interval(kDefaultWatchInterval);
  }
  if (dir->stale_after().empty()) dir->set_stale_after(kDefaultStaleAfter);
  if (!config.fingerprint_key_file().empty()) {
    config.set_fingerprint_key_file(
        ResolvePath(base_dir, config.fingerprint_key_file()));
  }
  if (config.harvest().has_shared() &&
      !config.harvest().shared().password_file().empty()) {
    v1::SharedHarvest* shared = config.mutable_harvest()->mutable_shared();
    shared->set_password_file(ResolvePath(base_dir, shared->password_file()));
  }
  for (v1::Domain& domain : *config.mutable_domains()) {
    if (domain.mode() == v1::DOMAIN_MODE_UNSPECIFIED) {
      domain.set_mode(v1::DOMAIN_MODE_ENFORCE);
    }
  }
}

absl::Status FieldError(std::string_view field, std::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat(ToAbsl(field), ": ", ToAbsl(reason)));
}

// The accepted values of one duration field: [min, max], and "0s" as well
// when `zero_is_off` (the field's documented way to turn something off).
struct DurationRange {
  absl::Duration min;
  absl::Duration max;
  bool zero_is_off = false;
};

// Bounds of every duration field (stated in proto/rcptguard/v1/config.proto).
// The fields that reach gRPC as int milliseconds (idle and handshake
// timeouts) stay far below INT_MAX ms (24.8 days), so DurationMillisForGrpc
// never clamps a validated value. The harvest durations are bounded by
// harvest::HarvestConfig::Validate.
constexpr DurationRange kReloadIntervalRange{absl::Seconds(1), absl::Hours(24)};
constexpr DurationRange kIdleTimeoutRange{absl::Seconds(1), absl::Hours(24)};
constexpr DurationRange kHandshakeTimeoutRange{absl::Milliseconds(100),
                                               absl::Minutes(5)};
constexpr DurationRange kMaxConnectionAgeRange{absl::Seconds(1),
                                               absl::Hours(24), true};
constexpr DurationRange kMaxConnectionAgeGraceRange{absl::Seconds(1),
                                                    absl::Hours(1)};
constexpr DurationRange kWatchIntervalRange{absl::Milliseconds(10),
                                            absl::Hours(24), true};
constexpr DurationRange kStaleAfterRange{absl::Seconds(1), absl::Hours(24 * 30),
                                         true};

// "<field>: invalid duration ..." when `value` does not parse, else
// "<field>: "<value>" must be between <min> and <max>" (with "0s (off) or"
// when zero is allowed) when it is outside the range: negative values, zero
// where it is not allowed, and values that would overflow a conversion to
// int milliseconds all land here.
absl::Status CheckDuration(std::string_view field, const std::string& value,
                           const DurationRange& range) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d)) {
    return FieldError(field, absl::StrCat("invalid duration \"", value,
                                          "\" (use e.g. \"2s\", \"24h\")"));
  }
  if (range.zero_is_off && d == absl::ZeroDuration()) return absl::OkStatus();
  if (d < range.min || d > range.max) {
    return FieldError(
        field, absl::StrCat("\"", value, "\" must be ",
                            range.zero_is_off ? "0s (off) or " : "", "between ",
                            absl::FormatDuration(range.min), " and ",
                            absl::FormatDuration(range.max)));
  }
  return absl::OkStatus();
}

// "<field>: must be at most <max> (got <value>)", or "between <min> and
// <max>" when min > 0.
absl::Status CheckRange(std::string_view field, uint64_t value, uint64_t min,
                        uint64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return FieldError(
      field, min == 0
                 ? absl::StrCat("must be at most ", max, " (got ", value, ")")
                 : absl::StrCat("must be between ", min, " and ", max, " (got ",
                                value, ")"));
}

// The harvest fields that harvest::HarvestConfig::Validate leaves unbounded.
absl::Status ValidateHarvestNumbers(const v1::HarvestDetection& harvest) {
  if (harvest.has_dsn_max_recipients()) {
    RG_RETURN_IF_ERROR(CheckRange("harvest.dsn_max_recipients",
                                  harvest.dsn_max_recipients(), 0,
                                  kMaxHarvestCount));
  }
  for (int i = 0; i < harvest.rules_size(); ++i) {
    const v1::HarvestRule& r = harvest.rules(i);
    const std::string field = absl::StrCat("harvest.rules[", i, "]");
    RG_RETURN_IF_ERROR(CheckRange(absl::StrCat(field, ".min_unknown"),
                                  r.min_unknown(), 0, kMaxHarvestCount));
    RG_RETURN_IF_ERROR(CheckRange(absl::StrCat(field, ".min_total"),
                                  r.min_total(), 0, kMaxHarvestCount));
  }
  return absl::OkStatus();
}

absl::Status ValidateTransport(const v1::ServerConfig& config) {
  if (config.has_tls()) {
    const v1::Tls& tls = config.tls();
    for (const auto& [field, value] :
         {std::pair<const char*, const std::string*>{"tls.cert_file",
                                                     &tls.cert_file()},
          {"tls.key_file", &tls.key_file()},
          {"tls.client_ca_file", &tls.client_ca_file()}}) {
      if (value->empty()) {
        return FieldError(field, "required with tls (mutual TLS)");
      }
    }
    RG_RETURN_IF_ERROR(CheckDuration(
        "tls.reload_interval", tls.reload_interval(), kReloadIntervalRange));
    if (config.insecure_plaintext()) {
      return FieldError("insecure_plaintext", "cannot be set with tls");
    }
    for (const auto& [field, list] :
         {std::pair<const char*,
                    const google::protobuf::RepeatedPtrField<std::string>*>{
              "access.validate", &config.access().validate()},
          {"access.read", &config.access().read()},
          {"access.admin", &config.access().admin()}}) {
      for (int i = 0; i < list->size(); ++i) {
        const std::string& id = list->Get(i);
        if (id.empty() || id.size() > 255 ||
            id.find_first_of(" \t\r\n,") != std::string::npos) {
          return FieldError(absl::StrCat(field, "[", i, "]"),
                            "an identity is a certificate DNS name or CN "
                            "without spaces or commas, or \"*\"");
        }
      }
    }
  } else {
    if (!config.insecure_plaintext()) {
      return FieldError("tls",
                        "required (mutual TLS); for a loopback demo set "
                        "insecure_plaintext: true instead");
    }
    if (!IsLoopbackListenAddress(config.listen_address())) {
      return FieldError(
          "insecure_plaintext",
          absl::StrCat("plaintext is only allowed on a loopback address, not ",
                       config.listen_address(), "; configure tls"));
    }
    if (config.has_access()) {
      return FieldError("access", "needs tls (plaintext has no identities)");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Duration ConfigDuration(const std::string& text,
                              absl::Duration fallback) {
  absl::Duration d;
  return !text.empty() && absl::ParseDuration(text, &d) ? d : fallback;
}

int DurationMillisForGrpc(absl::Duration d) {
  constexpr int kMax = std::numeric_limits<int>::max();
  if (d <= absl::ZeroDuration()) return 0;
  if (d >= absl::Milliseconds(kMax)) return kMax;
  return static_cast<int>(absl::ToInt64Milliseconds(d));
}

bool IsLoopbackListenAddress(std::string_view address) {
  return IsLoopbackHost(GrpcTargetHost(address));
}

absl::Status ValidateConfig(const v1::ServerConfig& config) {
  if (config.domains().empty()) {
    return FieldError("domains", "at least one served domain is required");
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < config.domains_size(); ++i) {
    const v1::Domain& domain = config.domains(i);
    const std::string field = absl::StrCat("domains[", i, "]");
    auto name = address::NormalizeDomain(domain.name());
    if (!name.ok()) {
      return FieldError(absl::StrCat(field, ".name"),
                        ToStd(name.status().message()));
    }
    if (!seen.insert(*name).second) {
      return FieldError(absl::StrCat(field, ".name"),
                        absl::StrCat("domain ", *name, " is listed twice"));
    }
    for (char c : domain.subaddress_delimiters()) {
      const bool ok =
          c == '+' || c == '-' || c == '_' || c == '=' || c == '#' || c == '~';
      if (!ok) {
        return FieldError(
            absl::StrCat(field, ".subaddress_delimiters"),
            absl::StrCat("'", std::string(1, c),
                         "' is not a supported delimiter (use + - _ = # ~)"));
      }
    }
    for (int j = 0; j < domain.aliases_size(); ++j) {
      auto alias = address::NormalizeDomain(domain.aliases(j));
      const std::string alias_field = absl::StrCat(field, ".aliases[", j, "]");
      if (!alias.ok()) {
        return FieldError(alias_field, ToStd(alias.status().message()));
      }
      if (!seen.insert(*alias).second) {
        return FieldError(alias_field,
                          absl::StrCat("domain ", *alias, " is listed twice"));
      }
    }
  }
  const v1::DirectorySource& dir = config.directory();
  if (dir.ldif_files().empty() && dir.snapshot_file().empty()) {
    return FieldError("directory",
                      "set snapshot_file or at least one of ldif_files");
  }
  if (!dir.ldif_files().empty() && !dir.snapshot_file().empty()) {
    return FieldError("directory",
                      "set either snapshot_file or ldif_files, not both");
  }
  if (!dir.snapshot_file().empty() && config.fingerprint_key_file().empty()) {
    return FieldError("fingerprint_key_file",
                      "required with directory.snapshot_file (the key the "
                      "snapshot was built with)");
  }
  if (dir.has_max_shrink() &&
      !(dir.max_shrink() >= 0.0 && dir.max_shrink() <= 1.0)) {
    return FieldError("directory.max_shrink", "must be between 0 and 1");
  }
  RG_RETURN_IF_ERROR(CheckDuration("directory.watch_interval",
                                   dir.watch_interval(), kWatchIntervalRange));
  RG_RETURN_IF_ERROR(CheckDuration("directory.stale_after", dir.stale_after(),
                                   kStaleAfterRange));
  const bool custom = dir.has_mapping();
  if (dir.snapshot_file().empty() && !custom && dir.preset() != "ad" &&
      dir.preset() != "openldap") {
    return FieldError(
        "directory.preset",
        absl::StrCat("must be \"ad\" or \"openldap\" (got \"", dir.preset(),
                     "\") or set directory.mapping"));
  }
  if (custom && dir.mapping().address_attributes().empty() &&
      dir.mapping().proxy_attributes().empty()) {
    return FieldError("directory.mapping",
                      "needs at least one address or proxy attribute");
  }
  RG_RETURN_IF_ERROR(
      CheckRange("directory.shard_bits", dir.shard_bits(), 0, kMaxShardBits));
  const v1::Limits& limits = config.limits();
  RG_RETURN_IF_ERROR(CheckRange("limits.max_recipients_per_request",
                                limits.max_recipients_per_request(), 0,
                                kMaxRecipientsLimit));
  if (limits.max_address_length() < 256 ||
      limits.max_address_length() > 65536) {
    return FieldError("limits.max_address_length",
                      absl::StrCat("must be between 256 and 65536 (got ",
                                   limits.max_address_length(), ")"));
  }
  if (limits.max_message_bytes() < 4096 ||
      limits.max_message_bytes() > (64u << 20)) {
    return FieldError("limits.max_message_bytes",
                      absl::StrCat("must be between 4096 and 67108864 (got ",
                                   limits.max_message_bytes(), ")"));
  }
  RG_RETURN_IF_ERROR(CheckRange("limits.max_concurrent_streams",
                                limits.max_concurrent_streams(), 0,
                                kMaxConcurrentStreamsLimit));
  RG_RETURN_IF_ERROR(CheckRange("limits.recipients_per_second_per_identity",
                                limits.recipients_per_second_per_identity(), 0,
                                kMaxRecipientsPerSecondLimit));
  RG_RETURN_IF_ERROR(ValidateHarvestNumbers(config.harvest()));
  if (auto harvest = HarvestConfigFromProto(config.harvest()); !harvest.ok()) {
    return harvest.status();
  }
  if (config.harvest().has_shared()) {
    if (auto shared = SharedHarvestFromProto(config.harvest().shared());
        !shared.ok()) {
      return shared.status();
    }
  }
  RG_RETURN_IF_ERROR(CheckDuration("limits.idle_timeout", limits.idle_timeout(),
                                   kIdleTimeoutRange));
  RG_RETURN_IF_ERROR(CheckDuration("limits.handshake_timeout",
                                   limits.handshake_timeout(),
                                   kHandshakeTimeoutRange));
  RG_RETURN_IF_ERROR(CheckDuration("limits.max_connection_age",
                                   limits.max_connection_age(),
                                   kMaxConnectionAgeRange));
  RG_RETURN_IF_ERROR(CheckDuration("limits.max_connection_age_grace",
                                   limits.max_connection_age_grace(),
                                   kMaxConnectionAgeGraceRange));
  RG_RETURN_IF_ERROR(CheckRange("limits.rate_burst_seconds",
                                limits.rate_burst_seconds(), 0, 3600));
  RG_RETURN_IF_ERROR(CheckRange("shutdown.drain_timeout_ms",
                                config.shutdown().drain_timeout_ms(), 0,
                                kMaxShutdownMs));
  RG_RETURN_IF_ERROR(CheckRange(
      "shutdown.grace_ms", config.shutdown().grace_ms(), 0, kMaxShutdownMs));
  RG_RETURN_IF_ERROR(CheckRange("limits.max_stream_buffer_bytes",
                                limits.max_stream_buffer_bytes(), 64u << 10,
                                64u << 20));
  RG_RETURN_IF_ERROR(CheckRange("limits.max_buffered_response_bytes",
                                limits.max_buffered_response_bytes(),
                                uint64_t{1} << 20, uint64_t{16} << 30));
  RG_RETURN_IF_ERROR(CheckRange("limits.max_streams_per_peer",
                                limits.max_streams_per_peer(), 1, 100000));
  RG_RETURN_IF_ERROR(
      CheckRange("limits.max_streams", limits.max_streams(), 1, 1000000));
  RG_RETURN_IF_ERROR(
      CheckRange("limits.grpc_threads", limits.grpc_threads(), 1, 64));
  RG_RETURN_IF_ERROR(CheckRange("limits.grpc_memory_bytes",
                                limits.grpc_memory_bytes(), uint64_t{64} << 20,
                                uint64_t{64} << 30));
  RG_RETURN_IF_ERROR(CheckRange("metrics.max_edge_ids",
                                config.metrics().max_edge_ids(), 0,
                                kMaxEdgeIdsLimit));
  return ValidateTransport(config);
}

absl::StatusOr<v1::ServerConfig> ParseConfig(std::string_view text,
                                             std::string_view source_name,
                                             std::string_view base_dir) {
  v1::ServerConfig config;
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors(source_name);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        errors.error().empty()
            ? absl::StrCat(ToAbsl(source_name), ": parse error")
            : errors.error());
  }
  ApplyDefaults(config, base_dir);
  absl::Status status = ValidateConfig(config);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(source_name), ": ", status.message()));
  }
  return config;
}

absl::StatusOr<v1::ServerConfig> LoadConfig(const std::string& path) {
  absl::StatusOr<std::string> text =
      ReadRegularFile("config file", path, kMaxConfigFileBytes);
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  }
  if (!text.ok()) return text.status();
  std::string base_dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) {
    base_dir = path.substr(0, slash == 0 ? 1 : slash);
  }
  return ParseConfig(*text, path, base_dir);
}

void FirstErrorCollector::AddError(int line,
                                   google::protobuf::io::ColumnNumber column,
                                   const std::string& message) {
  if (error_.empty()) {
    error_ =
        absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message);
  }
}

}  // namespace rcptguard::service
