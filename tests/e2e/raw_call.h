// Calls a gRPC method with raw request bytes, as a hostile or foreign
// client would: no generated stub, no serialization checks.
//
// Thread safety: a plain function; safe to call from any thread.
#ifndef RCPTGUARD_TESTS_E2E_RAW_CALL_H_
#define RCPTGUARD_TESTS_E2E_RAW_CALL_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"

namespace rcptguard::testing {

// One unary call of `method` ("/package.Service/Method") with `request` as
// the message bytes; the answer's bytes go to *response.
grpc::Status RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                          const std::string& method, const std::string& request,
                          std::string* response,
                          absl::Duration deadline = absl::Seconds(10));

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_E2E_RAW_CALL_H_
