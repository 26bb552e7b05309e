#include "server/service/stream_reactor.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/service/grpc_status.h"
#include "server/service/handler_support.h"
#include "server/service/wire.h"

namespace rcptguard::service {

RecipientValidationService::StreamReactor::StreamReactor(
    const RecipientValidationService* service,
    grpc::CallbackServerContext* context, bool batch)
    : service_(service), context_(context), batch_(batch) {
  peer_ = CallerKey(*context);
  absl::Status open = service_->streams_.Open(peer_);
  if (!open.ok()) {
    counted_ = false;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      finished_ = true;
    }
    Finish(ToGrpcStatus(Refuse(service_->metrics_, *context, open)));
    return;
  }
  StartRead(&request_bytes_);  // reading_ starts true
}

void RecipientValidationService::StreamReactor::OnReadDone(bool ok) {
  if (!ok) {  // the client closed its side, or the call is cancelled
    Actions next;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      read_closed_ = true;
      next = NextLocked();
    }
    Run(next);
    return;
  }
  // Each message is recorded as one ValidateStream request. Only this
  // reaction touches request_, response_, identity_ and the ring slot
  // after the queued ones (free: reading stops while the ring is full):
  // there is one read at a time.
  size_t slot;
  {
    absl::MutexLock lock(&mu_);
    slot = (head_ + queued_) % kMaxQueued;
  }
  ++messages_;
  CallTimer timer(service_->metrics_,
                  batch_ ? metrics::Method::kValidateBatchStream
                         : metrics::Method::kValidateStream);
  // The peer's certificate cannot change within a stream: authorize at
  // the first message only; charge the budget for every message.
  if (!identity_.has_value()) identity_ = service_->Identify(*context_);
  absl::Status status = identity_->status();
  uint64_t refused_id = 0;
  if (status.ok()) {
    status = batch_ ? AnswerBatch(&ring_[slot], &refused_id)
                    : AnswerOne(&ring_[slot], &refused_id);
  }
  request_bytes_.Clear();
  const uint64_t size = status.ok() ? ring_[slot].Length() : 0;
  timer.Done(status);
  Actions next;
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!status.ok()) {
      // A bad message ends the stream with its error: the edge learns
      // which request was refused (by id, or by its place in the stream
      // when it did not parse) and why.
      refusal_ =
          absl::Status(status.code(),
                       status.code() == absl::StatusCode::kInvalidArgument &&
                               absl::StartsWith(status.message(), "not a valid")
                           ? absl::StrCat("message ", messages_,
                                          " of the stream: ", status.message())
                           : absl::StrCat("request_id ", refused_id, ": ",
                                          status.message()));
    } else if (!broken_) {
      sizes_[slot] = size;
      queued_bytes_ += size;
      service_->budget_.Add(size);
      ++queued_;
    }
    next = NextLocked();
  }
  Run(next);
}

absl::Status RecipientValidationService::StreamReactor::AnswerOne(
    grpc::ByteBuffer* out, uint64_t* refused_id) {
  RG_RETURN_IF_ERROR(service_->Parse(*context_, request_bytes_, &request_));
  *refused_id = request_.request_id();
  RG_RETURN_IF_ERROR(
      service_->Charge(*context_, **identity_, request_.recipients_size()));
  response_.Clear();
  RG_RETURN_IF_ERROR(
      service_->validator_->Validate(request_, &response_, **identity_));
  if (service_->draining()) response_.set_draining(true);
  return SerializeMessage(response_, out);
}

absl::Status RecipientValidationService::StreamReactor::AnswerBatch(
    grpc::ByteBuffer* out, uint64_t* refused_id) {
  RG_RETURN_IF_ERROR(
      service_->Parse(*context_, request_bytes_, &batch_request_));
  const int n = batch_request_.requests_size();
  if (n > kMaxBatchRequests) {
    return absl::InvalidArgumentError(
        absl::StrCat("requests: ", n, " exceeds the limit of ",
                     kMaxBatchRequests, " per ValidateBatch"));
  }
  int recipients = 0;
  for (const v1::ValidateRequest& r : batch_request_.requests()) {
    recipients += r.recipients_size();
  }
  if (n > 0) *refused_id = batch_request_.requests(0).request_id();
  RG_RETURN_IF_ERROR(service_->Charge(*context_, **identity_, recipients));
  batch_response_.Clear();
  batch_response_.mutable_responses()->Reserve(n);
  for (const v1::ValidateRequest& r : batch_request_.requests()) {
    *refused_id = r.request_id();
    v1::ValidateResponse* answer = batch_response_.add_responses();
    RG_RETURN_IF_ERROR(service_->validator_->Validate(r, answer, **identity_));
    if (service_->draining()) answer->set_draining(true);
  }
  if (service_->draining()) batch_response_.set_draining(true);
  return SerializeMessage(batch_response_, out);
}

void RecipientValidationService::StreamReactor::OnWriteDone(bool ok) {
  Actions next;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (ok) {
      Dequeue(1);
    } else {  // the client went away: nothing more can be written
      broken_ = true;
      Dequeue(queued_);
    }
    next = NextLocked();
  }
  Run(next);
}

void RecipientValidationService::StreamReactor::OnDone() {
  {
    absl::MutexLock lock(&mu_);
    Dequeue(queued_);
  }
  if (counted_) service_->streams_.Close(peer_);
  delete this;
}

void RecipientValidationService::StreamReactor::Dequeue(size_t n) {
  for (size_t i = 0; i < n && queued_ > 0; ++i) {
    queued_bytes_ -= sizes_[head_];
    service_->budget_.Remove(sizes_[head_]);
    sizes_[head_] = 0;
    ring_[head_].Clear();
    head_ = (head_ + 1) % kMaxQueued;
    --queued_;
  }
}

RecipientValidationService::StreamReactor::Actions
RecipientValidationService::StreamReactor::NextLocked() {
  Actions next;
  if (finished_) return next;
  if (!writing_ && queued_ > 0) {
    writing_ = true;
    next.write = &ring_[head_];
  }
  const bool stop_reading = read_closed_ || refusal_.has_value() || broken_;
  const bool full =
      queued_ > 0 &&
      (queued_ >= kMaxQueued ||
       queued_bytes_ >= service_->limits_.max_stream_buffer_bytes ||
       service_->budget_.over());
  if (!reading_ && !stop_reading && !full) {
    reading_ = true;
    next.read = true;
  }
  // Finish once nothing is in flight and nothing more will be read.
  if (stop_reading && !reading_ && !writing_ && queued_ == 0) {
    finished_ = true;
    next.finish =
        refusal_.has_value() && !broken_ ? *refusal_ : absl::OkStatus();
  }
  return next;
}

void RecipientValidationService::StreamReactor::Run(const Actions& next) {
  if (next.write != nullptr) StartWrite(next.write);
  if (next.read) StartRead(&request_bytes_);
  if (next.finish.has_value()) Finish(ToGrpcStatus(*next.finish));
}

}  // namespace rcptguard::service
