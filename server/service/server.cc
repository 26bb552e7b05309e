#include "server/service/server.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/common/log.h"
#include "server/common/status_macros.h"
#include "server/service/directory_loader.h"
#include "server/service/harvest_config.h"

namespace rcptguard::service {

absl::StatusOr<std::unique_ptr<Server>> Server::Create(
    v1::ServerConfig config) {
  RG_ASSIGN_OR_RETURN(directory::SipKey key, LoadFingerprintKey(config));
  std::unique_ptr<harvest::Detector> detector;
  if (!config.harvest().disabled()) {
    RG_ASSIGN_OR_RETURN(harvest::HarvestConfig harvest_config,
                        HarvestConfigFromProto(config.harvest()));
    RG_ASSIGN_OR_RETURN(
        detector,
        harvest::Detector::Create(std::move(harvest_config),
                                  harvest::RealClock::Get(),
                                  config.domains_size()));
  }
  return std::unique_ptr<Server>(
      new Server(std::move(config), key, std::move(detector)));
}

Server::Server(v1::ServerConfig config, directory::SipKey key,
               std::unique_ptr<harvest::Detector> detector)
    : config_(std::move(config)),
      manager_(config_, key),
      detector_(std::move(detector)),
      validator_(config_, manager_.handle(), detector_.get()),
      validation_service_(&validator_),
      admin_service_(&manager_, detector_.get(),
                     config_.harvest().observe_only()) {}

Server::~Server() {
  if (server_ != nullptr) {
    server_->Shutdown();
    server_->Wait();
  }
}

absl::Status Server::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Plaintext for now: mTLS with edge identities is its own issue.
  builder.AddListeningPort(config_.listen_address(),
                           grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&validation_service_);
  builder.RegisterService(&admin_service_);
  const v1::Limits& limits = config_.limits();
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.max_message_bytes()));
  builder.SetMaxSendMessageSize(
      static_cast<int>(std::max<uint32_t>(limits.max_message_bytes(), 4u << 20)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(limits.max_concurrent_streams()));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config_.listen_address()));
  }
  server_->GetHealthCheckService()->SetServingStatus(false);
  LogInfo("listening", {{"address", config_.listen_address()},
                        {"port", port_},
                        {"version", RCPTGUARD_VERSION}});
  return absl::OkStatus();
}

absl::Status Server::LoadDirectory() {
  manager_.set_on_loaded([this] {
    if (server_ != nullptr && !shutting_down_.load()) {
      server_->GetHealthCheckService()->SetServingStatus(true);
    }
  });
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
  shutting_down_.store(true);
  server_->GetHealthCheckService()->SetServingStatus(false);
  const absl::Duration grace = absl::Milliseconds(config_.shutdown().grace_ms());
  const absl::Duration drain =
      absl::Milliseconds(config_.shutdown().drain_timeout_ms());
  LogInfo("draining", {{"grace_ms", config_.shutdown().grace_ms()},
                       {"drain_timeout_ms", config_.shutdown().drain_timeout_ms()}});
  // Keep answering while load balancers notice NOT_SERVING.
  absl::SleepFor(grace);
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(drain)));
  manager_.StopMaintenance();
  LogInfo("stopped");
}

void Server::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace rcptguard::service
