#include "server/service/services.h"

#include "server/service/grpc_status.h"

namespace rcptguard::service {

grpc::Status RecipientValidationService::Validate(
    grpc::ServerContext* context, const v1::ValidateRequest* request,
    v1::ValidateResponse* response) {
  return ToGrpcStatus(validator_->Validate(*request, response));
}

grpc::Status RecipientValidationService::ValidateStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ValidateResponse, v1::ValidateRequest>*
        stream) {
  v1::ValidateRequest request;
  v1::ValidateResponse response;
  while (stream->Read(&request)) {
    response.Clear();
    absl::Status status = validator_->Validate(request, &response);
    if (!status.ok()) {
      // A bad message ends the stream with its error: the edge learns which
      // request (by id) was refused and why.
      return ToGrpcStatus(absl::Status(
          status.code(), absl::StrCat("request_id ", request.request_id(),
                                      ": ", status.message())));
    }
    if (!stream->Write(response)) break;  // the client went away
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::GetStatus(grpc::ServerContext* context,
                                     const v1::GetStatusRequest* request,
                                     v1::GetStatusResponse* response) {
  manager_->FillStatus(response);
  return grpc::Status::OK;
}

}  // namespace rcptguard::service
