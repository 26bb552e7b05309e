#include "server/service/reflection_v1.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/support/status_code_enum.h"

namespace rcptguard::service {
namespace {

namespace rv1 = grpc::reflection::v1;
using google::protobuf::FileDescriptor;

void SetError(rv1::ServerReflectionResponse* response, grpc::StatusCode code,
              const std::string& message) {
  rv1::ErrorResponse* e = response->mutable_error_response();
  e->set_error_code(static_cast<int32_t>(code));
  e->set_error_message(message);
}

// Adds `file` and, depth first, the files it imports that this stream has
// not sent yet.
void AddFile(const FileDescriptor* file, std::vector<std::string>* sent,
             rv1::FileDescriptorResponse* out) {
  if (std::find(sent->begin(), sent->end(), file->name()) != sent->end()) {
    return;
  }
  sent->push_back(file->name());
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFile(file->dependency(i), sent, out);
  }
}

// Answers a file request: the file (always, even if sent before on this
// stream, since the client asked for it) and its unsent imports.
void AnswerFile(const FileDescriptor* file, std::vector<std::string>* sent,
                rv1::ServerReflectionResponse* response) {
  sent->erase(std::remove(sent->begin(), sent->end(), file->name()),
              sent->end());
  AddFile(file, sent, response->mutable_file_descriptor_response());
}

}  // namespace

ReflectionV1Service::ReflectionV1Service(
    std::vector<std::string> services,
    const google::protobuf::DescriptorPool* pool)
    : services_(std::move(services)),
      pool_(pool != nullptr
                ? pool
                : google::protobuf::DescriptorPool::generated_pool()) {}

void ReflectionV1Service::Answer(
    const rv1::ServerReflectionRequest& request, std::vector<std::string>* sent,
    rv1::ServerReflectionResponse* response) const {
  response->set_valid_host(request.host());
  *response->mutable_original_request() = request;
  switch (request.message_request_case()) {
    case rv1::ServerReflectionRequest::kListServices: {
      rv1::ListServiceResponse* list =
          response->mutable_list_services_response();
      for (const std::string& name : services_) {
        list->add_service()->set_name(name);
      }
      return;
    }
    case rv1::ServerReflectionRequest::kFileByFilename: {
      const FileDescriptor* file =
          pool_->FindFileByName(request.file_by_filename());
      if (file == nullptr) {
        SetError(response, grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("file not found: ",
                              SafeText(request.file_by_filename(), 256)));
        return;
      }
      AnswerFile(file, sent, response);
      return;
    }
    case rv1::ServerReflectionRequest::kFileContainingSymbol: {
      const FileDescriptor* file =
          pool_->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        SetError(response, grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("symbol not found: ",
                              SafeText(request.file_containing_symbol(), 256)));
        return;
      }
      AnswerFile(file, sent, response);
      return;
    }
    case rv1::ServerReflectionRequest::kFileContainingExtension: {
      const rv1::ExtensionRequest& ext = request.file_containing_extension();
      const google::protobuf::Descriptor* type =
          pool_->FindMessageTypeByName(ext.containing_type());
      const google::protobuf::FieldDescriptor* field =
          type != nullptr
              ? pool_->FindExtensionByNumber(type, ext.extension_number())
              : nullptr;
      if (field == nullptr) {
        SetError(response, grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("extension not found: ",
                              SafeText(ext.containing_type(), 256), " ",
                              ext.extension_number()));
        return;
      }
      AnswerFile(field->file(), sent, response);
      return;
    }
    case rv1::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const google::protobuf::Descriptor* type =
          pool_->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        SetError(response, grpc::StatusCode::NOT_FOUND,
                 absl::StrCat(
                     "type not found: ",
                     SafeText(request.all_extension_numbers_of_type(), 256)));
        return;
      }
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      pool_->FindAllExtensions(type, &extensions);
      rv1::ExtensionNumberResponse* out =
          response->mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const auto* f : extensions) out->add_extension_number(f->number());
      return;
    }
    case rv1::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      break;
  }
  SetError(response, grpc::StatusCode::UNIMPLEMENTED,
           "no request in message_request");
}

}  // namespace rcptguard::service
