// rcptguardd's composition: config -> directory manager -> services -> gRPC
// server with health checking and reflection.
//
// Transport: mutual TLS when the config has tls (certificates re-read when
// their files change), else loopback plaintext (insecure_plaintext), with
// an optional plaintext health-only port for probes.
//
// Life cycle: Create() checks the config, key and TLS files and wires every
// part (the DirectoryManager gets its clock and callbacks at construction);
// Start() binds and serves with health NOT_SERVING; LoadDirectory() loads;
// health turns SERVING on the first successful load, whichever call it
// comes from; Shutdown() turns health NOT_SERVING for good, waits the grace
// period, then stops accepting calls and gives in-flight calls the drain
// timeout to finish.
//
// Thread safety: Shutdown() and Reload() may be called from any thread
// (e.g. a signal thread) while Wait() blocks in another, and a load may
// come from Admin.Reload as soon as Start() serves; the other methods are
// called by the owner in the order above.
#ifndef RCPTGUARD_SERVER_SERVICE_SERVER_H_
#define RCPTGUARD_SERVER_SERVICE_SERVER_H_

#include <memory>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/exposition/http_endpoint.h"
#include "grpcpp/server.h"
#include "rcptguard/v1/config.pb.h"
#include "server/harvest_shared/replicator.h"
#include "server/metrics/metrics.h"
#include "server/service/admin_service.h"
#include "server/service/call_queues.h"
#include "server/service/directory_manager.h"
#include "server/service/generic_calls.h"
#include "server/service/reflection_v1.h"
#include "server/service/validation_service.h"
#include "server/service/validator.h"

namespace rcptguard::service {

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Create(
      v1::ServerConfig config);
  ~Server();

  // Binds config.listen_address and starts serving (health NOT_SERVING).
  absl::Status Start();
  // The bound port (useful with port 0).
  int port() const { return port_; }
  // The bound metrics port; 0 when metrics are disabled.
  int metrics_port() const;
  // The bound health-only port; 0 without health_listen_address.
  int health_port() const { return health_port_; }

  // The first load, then the maintenance thread (reclaiming, watching the
  // snapshot file). Health turns SERVING on the first successful load,
  // whenever it happens. With LDIF sources a failed first load is an error
  // (nothing would change it); with a snapshot source the server stays up
  // NOT_SERVING and loads the snapshot when it appears or changes.
  absl::Status LoadDirectory();
  // Reloads now (SIGHUP).
  void Reload(std::string_view trigger);

  void Shutdown();
  void Wait();

 private:
  // Stops both gRPC servers (calls get until `deadline`), then the Admin
  // worker and the queues' threads.
  void StopServing(absl::Time deadline);
  // The DirectoryManager's clock and callbacks (health, reload metrics).
  DirectoryManagerOptions ManagerOptions();

  Server(v1::ServerConfig config, directory::SipKey key,
         std::unique_ptr<harvest::Detector> detector,
         std::unique_ptr<harvest_shared::Replicator> replicator,
         std::unique_ptr<metrics::ServerMetrics> metrics);

  // Constant after construction.
  const v1::ServerConfig config_;
  // Null when metrics are disabled. Declared before everything that records.
  std::unique_ptr<metrics::ServerMetrics> metrics_;
  DirectoryManager manager_;
  std::unique_ptr<harvest::Detector> detector_;  // null when disabled
  // Null unless harvest.shared; declared after detector_, so stopped first.
  std::unique_ptr<harvest_shared::Replicator> replicator_;
  const AccessPolicy access_;
  RateLimiter limiter_;
  Validator validator_;
  RecipientValidationService validation_service_;
  AdminService admin_service_;

  // grpc.health.v1 of both servers: SERVING after the first load, never
  // again once Shutdown() began.
  Health health_;
  const ReflectionV1Service reflection_;
  // Admin, health, reflection on the main port; health on the other.
  GenericCalls generic_;
  GenericCalls health_generic_;
  // Declared before the servers, so destroyed after them (gRPC's rule).
  // The health-only port's queue rides along with the first main thread.
  CallQueues health_queues_;
  CallQueues queues_;

  std::unique_ptr<grpc::Server> server_;
  // The plaintext health-only server (health_listen_address); may be null.
  std::unique_ptr<grpc::Server> health_server_;
  int health_port_ = 0;
  // Declared last, so destroyed first: scrapes stop before the detector
  // they sample goes away.
  std::unique_ptr<exposition::HttpEndpoint> metrics_server_;
  int port_ = 0;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_SERVER_H_
