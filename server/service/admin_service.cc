#include "server/service/admin_service.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/text.h"
#include "server/service/client_verdict.h"
#include "server/service/grpc_status.h"
#include "server/service/handler_support.h"
#include "server/service/proto_enums.h"
#include "server/service/proto_time.h"
#include "server/service/wire.h"

namespace rcptguard::service {

absl::Status AdminService::Authorize(const grpc::ServerContextBase& context,
                                     Role role) const {
  if (access_ == nullptr) return absl::OkStatus();
  absl::StatusOr<std::string> who = access_->Authorize(context, role);
  if (who.ok()) return absl::OkStatus();
  return Refuse(metrics_, context, who.status());
}

namespace {

// One Admin call: authorized, parsed, answered by `work`, serialized and
// recorded.
template <typename Request, typename Response, typename Work>
absl::Status Serve(metrics::ServerMetrics* metrics, metrics::Method method,
                   absl::FunctionRef<absl::Status()> authorize,
                   const grpc::ByteBuffer& in, grpc::ByteBuffer* out,
                   Work work) {
  CallTimer timer(metrics, method);
  Request request;
  Response response;
  absl::Status status = authorize();
  if (status.ok()) status = ParseMessage(in, &request);
  if (status.ok()) status = work(request, &response);
  if (status.ok()) status = SerializeMessage(response, out);
  timer.Done(status);
  return status;
}

}  // namespace

absl::Status AdminService::Answer(std::string_view method,
                                  const grpc::ServerContextBase& context,
                                  const grpc::ByteBuffer& request,
                                  grpc::ByteBuffer* response) {
  const auto may = [&](Role role) {
    return [this, &context, role] { return Authorize(context, role); };
  };
  if (method == "/rcptguard.v1.Admin/GetStatus") {
    return Serve<v1::GetStatusRequest, v1::GetStatusResponse>(
        metrics_, metrics::Method::kGetStatus, may(Role::kRead), request,
        response, [&](const auto&, auto* out) { return DoGetStatus(out); });
  }
  if (method == "/rcptguard.v1.Admin/ListOffenders") {
    return Serve<v1::ListOffendersRequest, v1::ListOffendersResponse>(
        metrics_, metrics::Method::kListOffenders, may(Role::kRead), request,
        response,
        [&](const auto& in, auto* out) { return DoListOffenders(in, out); });
  }
  if (method == "/rcptguard.v1.Admin/ForgetClient") {
    return Serve<v1::ForgetClientRequest, v1::ForgetClientResponse>(
        metrics_, metrics::Method::kForgetClient, may(Role::kAdmin), request,
        response, [&](const auto& in, auto* out) {
          return DoForgetClient(in, context.peer(), out);
        });
  }
  if (method == "/rcptguard.v1.Admin/Reload") {
    return Serve<v1::ReloadRequest, v1::ReloadResponse>(
        metrics_, metrics::Method::kReload, may(Role::kAdmin), request,
        response, [&](const auto& in, auto* out) {
          return DoReload(in, context.peer(), out);
        });
  }
  return absl::UnimplementedError(
      absl::StrCat("no such method: ", SafeText(method, 128)));
}

absl::Status AdminService::DoGetStatus(v1::GetStatusResponse* response) const {
  manager_->FillStatus(response);
  v1::HarvestStatus* h = response->mutable_harvest();
  h->set_enabled(detector_ != nullptr);
  if (detector_ == nullptr) return absl::OkStatus();
  h->set_observe_only(observe_only_);
  const harvest::DetectorStats stats = detector_->Stats();
  h->set_tracked_keys(stats.tracked_keys);
  h->set_max_tracked_keys(stats.max_tracked_keys);
  h->set_evictions(stats.evictions);
  h->set_active_penalties(stats.active_penalties);
  h->set_domains_under_attack(stats.domains_under_attack);
  if (replicator_ != nullptr) {
    const harvest_shared::ReplicatorStatus r = replicator_->status();
    v1::SharedHarvestStatus* s = h->mutable_shared();
    s->set_state(r.state);
    s->set_connected(r.connected);
    s->set_address(r.address);
    s->set_last_error(r.last_error);
    s->set_lag_seconds(r.lag_seconds);
    s->set_flushes(r.flushes);
    s->set_errors(r.errors);
    s->set_dropped_deltas(r.dropped_deltas);
    s->set_queued_deltas(r.queued_deltas);
    s->set_reconnects(r.reconnects);
  }
  const std::vector<harvest::DomainStatus> domains =
      detector_->DomainStatuses();
  for (int i = 0;
       i < response->domains_size() && static_cast<size_t>(i) < domains.size();
       ++i) {
    response->mutable_domains(i)->set_under_attack(domains[i].under_attack);
    response->mutable_domains(i)->set_probing_clients(
        domains[i].distinct_clients);
  }
  return absl::OkStatus();
}

absl::Status AdminService::DoListOffenders(
    const v1::ListOffendersRequest& request,
    v1::ListOffendersResponse* response) const {
  if (detector_ == nullptr) {
    return absl::FailedPreconditionError("harvest detection is disabled");
  }
  if (request.limit() > 1000) {
    return absl::InvalidArgumentError("limit: must be at most 1000");
  }
  const size_t limit = request.limit() == 0 ? 20 : request.limit();
  for (const harvest::Offender& o : detector_->ListOffenders(limit)) {
    v1::Offender* out = response->add_offenders();
    out->set_key(o.key_text);
    out->set_valid(o.counts.valid);
    out->set_unknown(o.counts.unknown);
    out->set_not_served(o.counts.not_served);
    out->set_malformed(o.counts.malformed);
    out->set_null_sender_valid(o.null_sender.valid);
    out->set_null_sender_unknown(o.null_sender.unknown);
    out->set_distinct_unknown(o.distinct_unknown);
    out->set_distinct_clients(o.distinct_clients);
    *out->mutable_last_seen() = ToProtoTimestamp(o.last_seen);
    FillClientVerdict(o.verdict, out->mutable_verdict());
    FillClientVerdict(o.null_sender_verdict,
                      out->mutable_null_sender_verdict());
    out->set_observed_action(ToProtoClientAction(o.verdict.observed_action));
  }
  return absl::OkStatus();
}

absl::Status AdminService::DoForgetClient(
    const v1::ForgetClientRequest& request, const std::string& peer,
    v1::ForgetClientResponse* response) {
  if (detector_ == nullptr) {
    return absl::FailedPreconditionError("harvest detection is disabled");
  }
  // With sharing, every replica forgets (within one flush interval).
  absl::StatusOr<size_t> removed = replicator_ != nullptr
                                       ? replicator_->Forget(request.client())
                                       : detector_->Forget(request.client());
  if (!removed.ok()) return removed.status();
  response->set_removed(*removed);
  LogInfo(
      "harvest_forget",
      {{"client", request.client()}, {"removed", *removed}, {"peer", peer}});
  return absl::OkStatus();
}

absl::Status AdminService::DoReload(const v1::ReloadRequest& request,
                                    const std::string& peer,
                                    v1::ReloadResponse* response) {
  LogInfo("admin_reload",
          {{"force", request.force() ? "true" : "false"}, {"peer", peer}});
  absl::StatusOr<ReloadResult> result =
      manager_->Reload(request.force(), "admin");
  if (!result.ok()) return result.status();
  std::shared_ptr<const directory::Directory> dir = manager_->handle()->Get();
  if (dir != nullptr) {
    response->set_directory_version(dir->info().version);
    response->set_total_addresses(dir->address_count());
  }
  response->set_changed(result->kind == ReloadResult::Kind::kLoaded);
  return absl::OkStatus();
}

}  // namespace rcptguard::service
