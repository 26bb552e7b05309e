// A real rcptguardd started for a test: writes the config to a temp dir,
// starts the binary on port 0, learns the port, and offers a channel and a
// health probe. The process is stopped by PID when the object goes away.
//
// Thread safety: not thread-safe; one owner (the channel is thread-safe).
#ifndef RCPTGUARD_TESTS_E2E_SERVER_PROCESS_H_
#define RCPTGUARD_TESTS_E2E_SERVER_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::testing {

class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  // Kills the server if still running and removes its folder (config, log,
  // port files; kept with RG_KEEP_TEST_DIRS).
  ~ServerProcess();

  // Starts rcptguardd with `config_text` (plus `extra_args`); returns once
  // the port is known. Use with ASSERT_NO_FATAL_FAILURE. A config that
  // sets neither tls nor insecure_plaintext gets insecure_plaintext: true
  // (test servers listen on 127.0.0.1).
  void Start(const std::string& config_text,
             const std::vector<std::string>& extra_args = {});

  // Credentials for channel() and NewChannel() (default: plaintext), and
  // the name to expect in the server certificate. Call before Start().
  void SetChannelCredentials(std::shared_ptr<grpc::ChannelCredentials> creds,
                             std::string server_name) {
    credentials_ = std::move(creds);
    server_name_ = std::move(server_name);
  }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health();
  bool WaitServing(absl::Duration timeout);

  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  // A new channel (its own HTTP/2 connection), e.g. to act as another edge.
  std::shared_ptr<grpc::Channel> NewChannel() const;
  int port() const { return port_; }
  // The /metrics port (0 if the config disabled metrics).
  int metrics_port() const { return metrics_port_; }
  // The health-only port (0 without health_listen_address); give the
  // config "127.0.0.1:0" and the server picks it.
  int health_port() const { return health_port_; }
  std::string target() const;
  Subprocess& process() { return process_; }
  std::string log() const { return ReadFile(log_); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, port_file_, log_;
  int port_ = 0;
  int metrics_port_ = 0;
  int health_port_ = 0;
  Subprocess process_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::string server_name_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_E2E_SERVER_PROCESS_H_
