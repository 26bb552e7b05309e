#include "server/service/server.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/exposition/http_endpoint.h"
#include "common/log.h"
#include "common/pem.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/text.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/server_builder.h"
#include "server/address/address.h"
#include "server/config/config.h"
#include "server/config/harvest_proto.h"
#include "server/service/directory_loader.h"
#include "server/service/grpc_status.h"
#include "server/service/metrics_enums.h"
#include "server/service/wire.h"

namespace rcptguard::service {

namespace {

StreamLimits StreamLimitsFromConfig(const v1::Limits& limits) {
  StreamLimits out;
  out.max_stream_buffer_bytes = limits.max_stream_buffer_bytes();
  out.max_buffered_response_bytes = limits.max_buffered_response_bytes();
  out.max_streams_per_peer = limits.max_streams_per_peer();
  out.max_streams = limits.max_streams();
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Create(
    v1::ServerConfig config) {
  RG_ASSIGN_OR_RETURN(directory::SipKey key, LoadFingerprintKey(config));
  std::unique_ptr<harvest::Detector> detector;
  if (!config.harvest().disabled()) {
    RG_ASSIGN_OR_RETURN(harvest::HarvestConfig harvest_config,
                        HarvestConfigFromProto(config.harvest()));
    RG_ASSIGN_OR_RETURN(detector, harvest::Detector::Create(
                                      std::move(harvest_config),
                                      RealClock::Get(), config.domains_size()));
  }
  std::unique_ptr<harvest_shared::Replicator> replicator;
  if (detector != nullptr && config.harvest().has_shared()) {
    RG_ASSIGN_OR_RETURN(SharedHarvestSettings shared,
                        SharedHarvestFromProto(config.harvest().shared()));
    harvest_shared::Replicator::Options options;
    options.address = shared.address;
    options.username = shared.username;
    options.password = shared.password;
    options.key_prefix = shared.key_prefix;
    options.database = shared.database;
    options.connect_timeout = shared.connect_timeout;
    options.command_timeout = shared.command_timeout;
    options.flush_interval = shared.flush_interval;
    options.max_queued_deltas = shared.max_queued_deltas;
    RG_ASSIGN_OR_RETURN(replicator, harvest_shared::Replicator::Create(
                                        std::move(options), detector.get()));
  }
  std::unique_ptr<metrics::ServerMetrics> metrics;
  if (!config.metrics().disabled()) {
    metrics::MetricsOptions options;
    for (const v1::Domain& d : config.domains()) {
      // Validated already: NormalizeDomain succeeds.
      options.domains.push_back(
          address::NormalizeDomain(d.name()).value_or(d.name()));
    }
    RG_ASSIGN_OR_RETURN(harvest::HarvestConfig harvest_config,
                        HarvestConfigFromProto(config.harvest()));
    for (const harvest::HarvestRule& r : harvest_config.rules) {
      options.rule_names.push_back(r.name);
    }
    options.rule_names.push_back(std::string(harvest::kDomainAttackRule));
    options.max_edge_ids = config.metrics().max_edge_ids();
    options.version = RCPTGUARD_VERSION;
    RG_ASSIGN_OR_RETURN(metrics, metrics::ServerMetrics::Create(options));
    if (detector != nullptr) {
      harvest::Detector* d = detector.get();
      harvest_shared::Replicator* r = replicator.get();
      metrics->SetHarvestSampler([d, r] {
        const harvest::DetectorStats stats = d->Stats();
        metrics::HarvestSample sample;
        sample.tracked_keys = stats.tracked_keys;
        sample.max_tracked_keys = stats.max_tracked_keys;
        sample.evictions = stats.evictions;
        sample.active_penalty_boxes = stats.active_penalties;
        sample.domains_under_attack = stats.domains_under_attack;
        if (r != nullptr) {
          const harvest_shared::ReplicatorStatus rs = r->status();
          // Assigned, not emplace()d: clang finds a nested struct with
          // member initializers not default-constructible here.
          sample.shared = metrics::HarvestSample::Shared{};
          metrics::HarvestSample::Shared& sh = *sample.shared;
          sh.connected = rs.connected;
          sh.lag_seconds = rs.lag_seconds;
          sh.flushes = rs.flushes;
          sh.errors = rs.errors;
          sh.dropped_deltas = rs.dropped_deltas;
          sh.queued_deltas = rs.queued_deltas;
          sh.reconnects = rs.reconnects;
          for (size_t b = 0; b < harvest_shared::kFlushBuckets.size(); ++b) {
            sh.flush_buckets.emplace_back(harvest_shared::kFlushBuckets[b],
                                          rs.flush_buckets[b]);
          }
          sh.flush_seconds_sum = rs.flush_seconds_sum;
          sh.flush_count = rs.flush_count;
        }
        return sample;
      });
    }
  }
  return std::unique_ptr<Server>(
      new Server(std::move(config), key, std::move(detector),
                 std::move(replicator), std::move(metrics)));
}

Server::Server(v1::ServerConfig config, directory::SipKey key,
               std::unique_ptr<harvest::Detector> detector,
               std::unique_ptr<harvest_shared::Replicator> replicator,
               std::unique_ptr<metrics::ServerMetrics> metrics)
    : config_(std::move(config)),
      metrics_(std::move(metrics)),
      manager_(config_, key, ManagerOptions()),
      detector_(std::move(detector)),
      replicator_(std::move(replicator)),
      access_(config_),
      limiter_(config_.limits().recipients_per_second_per_identity(),
               config_.limits().rate_burst_seconds(), RealClock::Get()),
      validator_(config_, manager_.handle(), detector_.get(), metrics_.get(),
                 RealClock::Get()),
      validation_service_(&validator_, metrics_.get(), &access_, &limiter_,
                          StreamLimitsFromConfig(config_.limits())),
      admin_service_(&manager_, detector_.get(),
                     config_.harvest().observe_only(), metrics_.get(), &access_,
                     replicator_.get()),
      reflection_(std::vector<std::string>{
          "rcptguard.v1.RecipientValidation", "rcptguard.v1.Admin",
          "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection"}),
      generic_({.admin = &admin_service_, .reflection = &reflection_},
               &health_),
      health_generic_({.unimplemented = "not served on the health port"},
                      &health_) {}

DirectoryManagerOptions Server::ManagerOptions() {
  DirectoryManagerOptions options;
  options.clock = RealClock::Get();
  // A load may come before Start() has built both servers (SIGHUP,
  // Admin.Reload): Health records the state, and both servers answer from
  // it once they start.
  options.on_loaded = [this] { health_.Set(true); };
  if (metrics_ != nullptr) {
    metrics::ServerMetrics* m = metrics_.get();
    options.observer = [m](const ReloadResult& result,
                           const directory::Directory* served) {
      m->RecordReload(ToMetricsReloadResult(result.kind), result.reason,
                      absl::Seconds(result.seconds));
      if (result.kind == ReloadResult::Kind::kLoaded && served != nullptr) {
        metrics::DirectoryState state;
        state.version = served->info().version;
        state.addresses = served->address_count();
        state.domains = served->domains().size();
        state.built_at = served->info().built_at;
        state.loaded_at = served->info().loaded_at;
        for (const auto& alias : served->info().alias_domain_addresses) {
          state.alias_domain_addresses += alias.addresses;
        }
        m->SetDirectory(state);
      }
    };
  }
  return options;
}

int Server::metrics_port() const {
  return metrics_server_ != nullptr ? metrics_server_->port() : 0;
}

Server::~Server() {
  StopServing(absl::Now());
  // No load (and so no health callback) may run while members go away.
  manager_.StopMaintenance();
}

namespace {

// Mutual TLS whose files are re-read when they change.
std::shared_ptr<grpc::ServerCredentials> MutualTlsCredentials(
    const v1::Tls& tls) {
  const unsigned refresh = static_cast<unsigned>(std::max<int64_t>(
      1, absl::ToInt64Seconds(ConfigDuration(tls.reload_interval()))));
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          tls.key_file(), tls.cert_file(), tls.client_ca_file(), refresh);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

absl::Status Server::Start() {
  if (replicator_ != nullptr) replicator_->Start();
  if (metrics_ != nullptr) {
    const std::string& address = config_.metrics().listen_address();
    RG_ASSIGN_OR_RETURN(
        metrics_server_,
        exposition::StartHttpEndpoint(address, metrics_->collectables()));
    LogInfo("metrics_listening",
            {{"address", address}, {"port", metrics_server_->port()}});
  }
  InstallProtobufLogHandler();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (config_.has_tls()) {
    const v1::Tls& tls = config_.tls();
    // The certificate provider would only log unreadable files and refuse
    // every handshake: name them now and do not start.
    RG_RETURN_IF_ERROR(ReadPemFile("tls.cert_file", tls.cert_file()).status());
    RG_RETURN_IF_ERROR(ReadPemFile("tls.key_file", tls.key_file()).status());
    RG_RETURN_IF_ERROR(
        ReadPemFile("tls.client_ca_file", tls.client_ca_file()).status());
    credentials = MutualTlsCredentials(tls);
    LogInfo("tls", {{"mode", "mutual"},
                    {"cert_file", tls.cert_file()},
                    {"client_ca_file", tls.client_ca_file()},
                    {"reload_interval", tls.reload_interval()}});
  } else {
    // ValidateConfig allowed this only on a loopback address.
    LogWarning("INSECURE_PLAINTEXT",
               {{"address", config_.listen_address()},
                {"warning",
                 "no TLS, no client identities, every caller may call "
                 "Admin: for loopback demos and tests only; configure tls "
                 "in production"}});
    credentials = grpc::InsecureServerCredentials();
  }
  builder.AddListeningPort(config_.listen_address(), credentials, &port_);
  const v1::Limits& limits = config_.limits();
  // Every call on our queues (call_queues.h): RecipientValidation's
  // methods registered, everything else through the generic service.
  builder.RegisterService(&validation_service_);
  generic_.Register(&builder);
  queues_.AddTo(&builder, static_cast<int>(limits.grpc_threads()));
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_IDLE_MS,
      DurationMillisForGrpc(ConfigDuration(limits.idle_timeout())));
  builder.AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      DurationMillisForGrpc(ConfigDuration(limits.handshake_timeout())));
  // Old connections are sent away so that clients spread over replicas
  // added since (limits.max_connection_age; "0s" is gRPC's default: none).
  if (const absl::Duration age = ConfigDuration(limits.max_connection_age());
      age > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               DurationMillisForGrpc(age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               DurationMillisForGrpc(ConfigDuration(
                                   limits.max_connection_age_grace())));
  }
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(limits.max_message_bytes()));
  builder.SetMaxSendMessageSize(static_cast<int>(
      std::max<uint32_t>(limits.max_message_bytes(), 4u << 20)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(limits.max_concurrent_streams()));
  // gRPC's own memory (connections, calls, read buffers): under pressure it
  // shrinks flow-control windows and refuses new calls.
  grpc::ResourceQuota quota("rcptguardd");
  quota.Resize(static_cast<size_t>(limits.grpc_memory_bytes()));
  builder.SetResourceQuota(quota);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config_.listen_address()));
  }
  if (!config_.health_listen_address().empty()) {
    // Only grpc.health.v1 on this port.
    grpc::ServerBuilder health;
    health.AddListeningPort(config_.health_listen_address(),
                            grpc::InsecureServerCredentials(), &health_port_);
    health_generic_.Register(&health);
    health_queues_.AddTo(&health, 1);
    health.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 60000);
    health.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 5000);
    health_server_ = health.BuildAndStart();
    if (health_server_ == nullptr || health_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", config_.health_listen_address()));
    }
    queues_.AddPassenger(&health_queues_);
    health_queues_.Start(
        [&](grpc::ServerCompletionQueue* q) {
          health_generic_.Serve(&health_queues_, q);
        },
        /*threads=*/false);
    LogInfo("health_listening", {{"address", config_.health_listen_address()},
                                 {"port", health_port_}});
  }
  queues_.Start([&](grpc::ServerCompletionQueue* q) {
    validation_service_.Serve(&queues_, q);
    generic_.Serve(&queues_, q);
  });
  LogInfo("listening", {{"address", config_.listen_address()},
                        {"port", port_},
                        {"tls", config_.has_tls() ? "mutual" : "off"},
                        {"grpc_threads", limits.grpc_threads()},
                        {"version", RCPTGUARD_VERSION}});
  return absl::OkStatus();
}

absl::Status Server::LoadDirectory() {
  absl::StatusOr<ReloadResult> first = manager_.Reload(false, "start");
  if (!first.ok() && config_.directory().snapshot_file().empty()) {
    return first.status();
  }
  if (!first.ok()) {
    LogWarning("waiting_for_snapshot",
               {{"path", config_.directory().snapshot_file()},
                {"reason", first.status().message()}});
  } else {
    LogInfo("serving");
  }
  manager_.StartMaintenance();
  return absl::OkStatus();
}

void Server::Reload(std::string_view trigger) {
  (void)manager_.Reload(false, trigger);
}

void Server::Shutdown() {
  if (server_ == nullptr) return;
  health_.ShutDown();
  // Answers from now on say `draining`: stream clients move new requests
  // elsewhere before GOAWAY and the drain deadline.
  validation_service_.SetDraining();
  const absl::Duration grace =
      absl::Milliseconds(config_.shutdown().grace_ms());
  const absl::Duration drain =
      absl::Milliseconds(config_.shutdown().drain_timeout_ms());
  LogInfo("draining",
          {{"grace_ms", config_.shutdown().grace_ms()},
           {"drain_timeout_ms", config_.shutdown().drain_timeout_ms()}});
  // Keep answering while load balancers notice NOT_SERVING.
  absl::SleepFor(grace);
  StopServing(absl::Now() + drain);
  manager_.StopMaintenance();
  LogInfo("stopped");
}

void Server::StopServing(absl::Time deadline) {
  // Watch streams would otherwise hold the servers up until the deadline.
  health_.EndWatches();
  if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(deadline));
  if (health_server_ != nullptr) {
    health_server_->Shutdown(
        absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(1))));
  }
  // No call is left, so no Admin work either; then the threads.
  generic_.StopWorker();
  health_queues_.Shutdown();
  queues_.Shutdown();
}

void Server::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace rcptguard::service
