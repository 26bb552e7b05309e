// Server reflection (grpc.reflection.v1 and v1alpha, whose messages are
// the same on the wire). Debian 12's gRPC 1.51 ships only a v1alpha plugin,
// served on gRPC's own threads; tools of today ask for v1 first. Both are
// answered here, by GenericCalls (generic_calls.h) on our completion
// queues, from the generated descriptor pool of the process and the
// server's list of services. Like gRPC's v1alpha, each answer to a file
// request holds the file and the files it imports, each file at most once
// per stream. The health-only port has no reflection.
//
// Thread safety: const after construction; a stream's state (`sent`) is
// the caller's.
#ifndef RCPTGUARD_SERVER_SERVICE_REFLECTION_V1_H_
#define RCPTGUARD_SERVER_SERVICE_REFLECTION_V1_H_

#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "grpc/reflection/v1/reflection.pb.h"

namespace rcptguard::service {

class ReflectionV1Service final {
 public:
  // `services`: what list_services lists. `pool` must outlive the service;
  // null: the generated pool.
  explicit ReflectionV1Service(
      std::vector<std::string> services,
      const google::protobuf::DescriptorPool* pool = nullptr);

  // Answers one request; `sent` holds the names of the files this stream
  // has sent already.
  void Answer(const grpc::reflection::v1::ServerReflectionRequest& request,
              std::vector<std::string>* sent,
              grpc::reflection::v1::ServerReflectionResponse* response) const;

 private:
  const std::vector<std::string> services_;
  const google::protobuf::DescriptorPool* const pool_;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_REFLECTION_V1_H_
