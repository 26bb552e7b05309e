#include "server/service/stream_reactor.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/service/grpc_status.h"
#include "server/service/handler_support.h"
#include "server/service/wire.h"

namespace rcptguard::service {

void RecipientValidationService::StreamReactor::Await(
    RecipientValidationService* service, CallQueues* queues,
    grpc::ServerCompletionQueue* queue, bool batch) {
  auto* call = new StreamReactor(service, queues, queue, batch);
  if (!queues->Request([&] {
        if (batch) {
          service->RequestValidateBatchStream(&call->context_, &call->stream_,
                                              queue, queue, &call->started_);
        } else {
          service->RequestValidateStream(&call->context_, &call->stream_, queue,
                                         queue, &call->started_);
        }
      })) {
    delete call;
  }
}

RecipientValidationService::StreamReactor::StreamReactor(
    RecipientValidationService* service, CallQueues* queues,
    grpc::ServerCompletionQueue* queue, bool batch)
    : service_(service),
      queues_(queues),
      live_(queues),
      queue_(queue),
      batch_(batch) {}

void RecipientValidationService::StreamReactor::OnStarted(bool ok) {
  if (!ok) {  // the server shuts down: no call came
    delete this;
    return;
  }
  Await(service_, queues_, queue_, batch_);  // the next call of this method
  peer_ = CallerKey(context_);
  absl::Status open = service_->streams_.Open(peer_);
  if (!open.ok()) {
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
    }
    stream_.Finish(ToGrpcStatus(Refuse(service_->metrics_, context_, open)),
                   &finish_done_);
    return;
  }
  counted_ = true;
  {
    absl::MutexLock lock(&mu_);
    reading_ = true;
  }
  stream_.Read(&request_bytes_, &read_done_);
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
  // reaction touches identity_ and the ring slot
  // after the queued ones (free: reading stops while the ring is full):
  // there is one read at a time.
  size_t slot;
  {
    absl::MutexLock lock(&mu_);
    slot = (head_ + queued_) % kMaxQueued;
  }
  ++messages_;
  CallTimer timer(service_->metrics_, metrics::Method::kValidateStream);
  // The peer's certificate cannot change within a stream: authorize at
  // the first message only; charge the budget for every message.
  if (!identity_.has_value()) identity_ = service_->Identify(context_);
  absl::Status status = identity_->status();
  uint64_t size = 0;
  uint64_t request_id = 0;  // a refusal in a batch names no request_id
  if (batch_) {
    // Each request of the batch is timed and recorded by AnswerBatch; the
    // message itself only when it ends the stream.
    if (status.ok()) {
      status = service_->AnswerBatch(context_, **identity_, request_bytes_,
                                     &ring_[slot]);
    }
    request_bytes_.Clear();
    if (status.ok()) size = ring_[slot].Length();
  } else {
    CallArena arena;
    auto* request = google::protobuf::Arena::CreateMessage<v1::ValidateRequest>(
        arena.get());
    auto* response =
        google::protobuf::Arena::CreateMessage<v1::ValidateResponse>(
            arena.get());
    if (status.ok()) {
      status = service_->Parse(context_, request_bytes_, request);
      request_id = request->request_id();
    }
    request_bytes_.Clear();
    if (status.ok()) {
      status =
          service_->Charge(context_, **identity_, request->recipients_size());
    }
    if (status.ok()) {
      status = service_->validator_->Validate(*request, response, **identity_);
      if (status.ok() && service_->draining()) response->set_draining(true);
    }
    if (status.ok()) {
      status = SerializeMessage(*response, &ring_[slot]);
      size = ring_[slot].Length();
    }
  }
  if (!batch_ || !status.ok()) timer.Done(status);
  Actions next;
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!status.ok()) {
      // A bad message ends the stream with its error: the edge learns
      // which request was refused (by id, or by its place in the stream
      // when it did not parse) and why.
      refusal_ = absl::Status(
          status.code(),
          batch_ || (status.code() == absl::StatusCode::kInvalidArgument &&
                     absl::StartsWith(status.message(), "not a valid"))
              ? absl::StrCat("message ", messages_,
                             " of the stream: ", status.message())
              : absl::StrCat("request_id ", request_id, ": ",
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

void RecipientValidationService::StreamReactor::OnFinishDone(bool /*ok*/) {
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
  if (next.write != nullptr) stream_.Write(*next.write, &write_done_);
  if (next.read) stream_.Read(&request_bytes_, &read_done_);
  if (next.finish.has_value()) {
    stream_.Finish(ToGrpcStatus(*next.finish), &finish_done_);
  }
}

}  // namespace rcptguard::service
