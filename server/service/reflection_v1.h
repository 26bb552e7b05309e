// Server reflection, version 1 (grpc.reflection.v1), beside gRPC's own
// v1alpha. Debian 12's gRPC 1.51 ships only v1alpha; tools of today ask for
// v1 first. Both answer from the same place: the generated descriptor pool
// of the process, and the server's own list of services.
//
//   grpc::ServerBuilder builder;
//   builder.SetOption(std::make_unique<ReflectionV1Option>());
//   ... register services ...
//   builder.BuildAndStart();   // now serves grpc.reflection.v1 as well
//
// The option adds a ServerBuilderPlugin to that one builder only (not to
// every builder of the process, as gRPC's v1alpha plugin does), so the
// health-only port stays without reflection. Like v1alpha, each answer to a
// file request holds the file and the files it imports, each file at most
// once per stream.
//
// Thread safety: gRPC runs each stream on one of its threads; a stream's
// state is its own, the service's (the list of service names, set once when
// the server starts) is read only.
#ifndef RCPTGUARD_SERVER_SERVICE_REFLECTION_V1_H_
#define RCPTGUARD_SERVER_SERVICE_REFLECTION_V1_H_

#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpcpp/impl/server_builder_option.h"

namespace rcptguard::service {

class ReflectionV1Service final
    : public grpc::reflection::v1::ServerReflection::Service {
 public:
  // `pool` must outlive the service; null: the generated pool.
  explicit ReflectionV1Service(
      const google::protobuf::DescriptorPool* pool = nullptr);

  // The services listed by list_services (the server's, set at start).
  void SetServiceList(const std::vector<std::string>* services) {
    services_ = services;
  }

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1::ServerReflectionResponse,
                               grpc::reflection::v1::ServerReflectionRequest>*
          stream) override;

  // Answers one request; `sent` holds the names of the files this stream
  // has sent already. Public for tests.
  void Answer(const grpc::reflection::v1::ServerReflectionRequest& request,
              std::vector<std::string>* sent,
              grpc::reflection::v1::ServerReflectionResponse* response) const;

 private:
  const google::protobuf::DescriptorPool* const pool_;
  const std::vector<std::string>* services_ = nullptr;
};

// Adds grpc.reflection.v1 to the builder it is set on.
class ReflectionV1Option final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*
                         plugins) override;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_REFLECTION_V1_H_
