#include "server/service/services.h"

#include "absl/time/clock.h"
#include "server/common/log.h"
#include "server/service/grpc_status.h"

namespace rcptguard::service {
namespace {

// Times one call (or one stream message) and records it on Done().
class CallTimer {
 public:
  CallTimer(metrics::ServerMetrics* metrics, metrics::Method method)
      : metrics_(metrics), method_(method), start_(absl::Now()) {}
  grpc::Status Done(grpc::Status status) {
    if (metrics_ != nullptr) {
      metrics_->RecordRequest(
          method_, static_cast<absl::StatusCode>(status.error_code()),
          absl::Now() - start_);
    }
    return status;
  }

 private:
  metrics::ServerMetrics* const metrics_;
  const metrics::Method method_;
  const absl::Time start_;
};

}  // namespace

grpc::Status RecipientValidationService::Validate(
    grpc::ServerContext* context, const v1::ValidateRequest* request,
    v1::ValidateResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kValidate);
  return timer.Done(ToGrpcStatus(validator_->Validate(*request, response)));
}

grpc::Status RecipientValidationService::ValidateStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ValidateResponse, v1::ValidateRequest>*
        stream) {
  v1::ValidateRequest request;
  v1::ValidateResponse response;
  while (stream->Read(&request)) {
    // Each message is recorded as one ValidateStream request.
    CallTimer timer(metrics_, metrics::Method::kValidateStream);
    response.Clear();
    absl::Status status = validator_->Validate(request, &response);
    timer.Done(ToGrpcStatus(status));
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

grpc::Status AdminService::GetStatusImpl(grpc::ServerContext* context,
                                     const v1::GetStatusRequest* request,
                                     v1::GetStatusResponse* response) {
  manager_->FillStatus(response);
  v1::HarvestStatus* h = response->mutable_harvest();
  h->set_enabled(detector_ != nullptr);
  if (detector_ == nullptr) return grpc::Status::OK;
  h->set_observe_only(observe_only_);
  const harvest::DetectorStats stats = detector_->Stats();
  h->set_tracked_keys(stats.tracked_keys);
  h->set_max_tracked_keys(stats.max_tracked_keys);
  h->set_evictions(stats.evictions);
  h->set_active_penalties(stats.active_penalties);
  h->set_domains_under_attack(stats.domains_under_attack);
  const std::vector<harvest::DomainStatus> domains =
      detector_->DomainStatuses();
  for (int i = 0; i < response->domains_size() &&
                  static_cast<size_t>(i) < domains.size();
       ++i) {
    response->mutable_domains(i)->set_under_attack(domains[i].under_attack);
    response->mutable_domains(i)->set_probing_clients(
        domains[i].distinct_clients);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ListOffendersImpl(
    grpc::ServerContext* context, const v1::ListOffendersRequest* request,
    v1::ListOffendersResponse* response) {
  if (detector_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "harvest detection is disabled");
  }
  if (request->limit() > 1000) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "limit: must be at most 1000");
  }
  const size_t limit = request->limit() == 0 ? 20 : request->limit();
  for (const harvest::Offender& o : detector_->ListOffenders(limit)) {
    v1::Offender* out = response->add_offenders();
    out->set_key(o.key_text);
    out->set_valid(o.counts.valid);
    out->set_unknown(o.counts.unknown);
    out->set_not_served(o.counts.not_served);
    out->set_malformed(o.counts.malformed);
    const int64_t nanos = absl::ToUnixNanos(o.last_seen);
    out->mutable_last_seen()->set_seconds(nanos / 1000000000);
    out->mutable_last_seen()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
    FillClientVerdict(o.verdict, out->mutable_verdict());
    out->set_observed_action(
        static_cast<v1::ClientAction>(static_cast<int>(o.verdict.observed_action) + 1));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ForgetClientImpl(grpc::ServerContext* context,
                                        const v1::ForgetClientRequest* request,
                                        v1::ForgetClientResponse* response) {
  if (detector_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "harvest detection is disabled");
  }
  absl::StatusOr<size_t> removed = detector_->Forget(request->client());
  if (!removed.ok()) return ToGrpcStatus(removed.status());
  response->set_removed(*removed);
  LogInfo("harvest_forget", {{"client", request->client()},
                             {"removed", *removed},
                             {"peer", context->peer()}});
  return grpc::Status::OK;
}

}  // namespace rcptguard::service

namespace rcptguard::service {

grpc::Status AdminService::ReloadImpl(grpc::ServerContext* context,
                                  const v1::ReloadRequest* request,
                                  v1::ReloadResponse* response) {
  LogInfo("admin_reload", {{"force", request->force() ? "true" : "false"},
                           {"peer", context->peer()}});
  absl::StatusOr<ReloadResult> result =
      manager_->Reload(request->force(), "admin");
  if (!result.ok()) return ToGrpcStatus(result.status());
  std::shared_ptr<const directory::Directory> dir = manager_->handle()->Get();
  if (dir != nullptr) {
    response->set_directory_version(dir->info().version);
    response->set_total_addresses(dir->address_count());
  }
  response->set_changed(result->kind == ReloadResult::Kind::kLoaded);
  return grpc::Status::OK;
}

}  // namespace rcptguard::service

namespace rcptguard::service {

grpc::Status AdminService::GetStatus(grpc::ServerContext* context,
                                     const v1::GetStatusRequest* request,
                                     v1::GetStatusResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kGetStatus);
  return timer.Done(GetStatusImpl(context, request, response));
}

grpc::Status AdminService::ListOffenders(
    grpc::ServerContext* context, const v1::ListOffendersRequest* request,
    v1::ListOffendersResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kListOffenders);
  return timer.Done(ListOffendersImpl(context, request, response));
}

grpc::Status AdminService::ForgetClient(grpc::ServerContext* context,
                                        const v1::ForgetClientRequest* request,
                                        v1::ForgetClientResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kForgetClient);
  return timer.Done(ForgetClientImpl(context, request, response));
}

grpc::Status AdminService::Reload(grpc::ServerContext* context,
                                  const v1::ReloadRequest* request,
                                  v1::ReloadResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kReload);
  return timer.Done(ReloadImpl(context, request, response));
}

}  // namespace rcptguard::service
