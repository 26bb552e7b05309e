// The one place where absl::Status becomes grpc::Status. Abseil's codes map
// one to one onto gRPC's.
//
// Thread safety: a pure function.
#ifndef RCPTGUARD_SERVER_SERVICE_GRPC_STATUS_H_
#define RCPTGUARD_SERVER_SERVICE_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace rcptguard::service {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_GRPC_STATUS_H_
