// The one place where absl::Status becomes grpc::Status. Every handler of
// rcptguardd (RecipientValidation, Admin) produces an absl::Status and
// returns or finishes through ToGrpcStatus, as TensorFlow Serving does
// (model_servers/grpc_status_util.cc).
//
//   absl::Status status = Authorize(*context, Role::kAdmin);
//   if (status.ok()) status = DoReload(*request, response);
//   return ToGrpcStatus(status);
//
// Contract: Abseil's canonical codes map one to one onto gRPC's (checked
// below at compile time for every code); the message is kept as it is. A
// code outside the canonical ones becomes UNKNOWN.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_SERVER_SERVICE_GRPC_STATUS_H_
#define RCPTGUARD_SERVER_SERVICE_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace rcptguard::service {

#define RG_SAME_STATUS_CODE(absl_code, grpc_code)                  \
  static_assert(static_cast<int>(absl::StatusCode::absl_code) ==   \
                    static_cast<int>(grpc::StatusCode::grpc_code), \
                #absl_code " and " #grpc_code " differ")
RG_SAME_STATUS_CODE(kOk, OK);
RG_SAME_STATUS_CODE(kCancelled, CANCELLED);
RG_SAME_STATUS_CODE(kUnknown, UNKNOWN);
RG_SAME_STATUS_CODE(kInvalidArgument, INVALID_ARGUMENT);
RG_SAME_STATUS_CODE(kDeadlineExceeded, DEADLINE_EXCEEDED);
RG_SAME_STATUS_CODE(kNotFound, NOT_FOUND);
RG_SAME_STATUS_CODE(kAlreadyExists, ALREADY_EXISTS);
RG_SAME_STATUS_CODE(kPermissionDenied, PERMISSION_DENIED);
RG_SAME_STATUS_CODE(kResourceExhausted, RESOURCE_EXHAUSTED);
RG_SAME_STATUS_CODE(kFailedPrecondition, FAILED_PRECONDITION);
RG_SAME_STATUS_CODE(kAborted, ABORTED);
RG_SAME_STATUS_CODE(kOutOfRange, OUT_OF_RANGE);
RG_SAME_STATUS_CODE(kUnimplemented, UNIMPLEMENTED);
RG_SAME_STATUS_CODE(kInternal, INTERNAL);
RG_SAME_STATUS_CODE(kUnavailable, UNAVAILABLE);
RG_SAME_STATUS_CODE(kDataLoss, DATA_LOSS);
RG_SAME_STATUS_CODE(kUnauthenticated, UNAUTHENTICATED);
#undef RG_SAME_STATUS_CODE

inline grpc::StatusCode ToGrpcCode(absl::StatusCode code) {
  const int value = static_cast<int>(code);
  if (value < 0 ||
      value > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return grpc::StatusCode::UNKNOWN;
  }
  return static_cast<grpc::StatusCode>(value);
}

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(ToGrpcCode(status.code()), std::string(status.message()));
}

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_GRPC_STATUS_H_
