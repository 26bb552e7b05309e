#include "tests/e2e/server_process.h"

#include <signal.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace rcptguard::testing {

using ::grpc::health::v1::HealthCheckResponse;

ServerProcess::~ServerProcess() {
  channel_.reset();
  process_.Signal(SIGKILL);
  process_.Wait(absl::Seconds(10));
  RemoveTestDir(dir_);
}

void ServerProcess::Start(const std::string& config_text,
                          const std::vector<std::string>& extra_args) {
  dir_ = MakeTempDir("rg-e2e");
  ASSERT_FALSE(dir_.empty());
  const std::string config = dir_ + "/config.textproto";
  // Test servers listen on 127.0.0.1: plaintext unless the test sets tls.
  const bool transport_set =
      config_text.find("tls {") != std::string::npos ||
      config_text.find("insecure_plaintext") != std::string::npos;
  ASSERT_TRUE(
      WriteFile(config, transport_set
                            ? config_text
                            : config_text + "\ninsecure_plaintext: true\n")
          .ok());
  port_file_ = dir_ + "/port";
  log_ = dir_ + "/rcptguardd.log";
  // Metrics on a free loopback port, so tests can run side by side.
  std::vector<std::string> argv = {
      BinaryDir() + "/server/rcptguardd",
      "--config=" + config,
      "--port_file=" + port_file_,
      "--metrics_listen=127.0.0.1:0",
      "--metrics_port_file=" + dir_ + "/metrics_port",
      "--health_port_file=" + dir_ + "/health_port"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ASSERT_TRUE(process_.Start(argv, log_, log_).ok());
  ASSERT_TRUE(WaitForFile(port_file_, absl::Seconds(20))) << ReadFile(log_);
  port_ = std::stoi(ReadFile(port_file_));
  const std::string metrics_port = ReadFile(dir_ + "/metrics_port");
  metrics_port_ = metrics_port.empty() ? 0 : std::stoi(metrics_port);
  const std::string health_port = ReadFile(dir_ + "/health_port");
  health_port_ = health_port.empty() ? 0 : std::stoi(health_port);
  channel_ = NewChannel();
}

std::shared_ptr<grpc::Channel> ServerProcess::NewChannel() const {
  grpc::ChannelArguments args;
  // A distinct argument keeps gRPC from sharing one subchannel.
  static std::atomic<int> next{0};
  args.SetInt("rcptguard.test.channel", next.fetch_add(1));
  if (!server_name_.empty()) args.SetSslTargetNameOverride(server_name_);
  return grpc::CreateCustomChannel(target(),
                                   credentials_ != nullptr
                                       ? credentials_
                                       : grpc::InsecureChannelCredentials(),
                                   args);
}

std::string ServerProcess::target() const {
  return absl::StrCat("127.0.0.1:", port_);
}

HealthCheckResponse::ServingStatus ServerProcess::Health() {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status =
      stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &response);
  if (!status.ok()) return HealthCheckResponse::UNKNOWN;
  return response.status();
}

bool ServerProcess::WaitServing(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Health() == HealthCheckResponse::SERVING) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

}  // namespace rcptguard::testing
