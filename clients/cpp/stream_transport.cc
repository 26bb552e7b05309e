#include "clients/cpp/stream_transport.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/strings.h"
#include "grpc/byte_buffer.h"
#include "grpc/byte_buffer_reader.h"
#include "grpc/grpc.h"
#include "grpcpp/impl/codegen/completion_queue_tag.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"

namespace rcptguard::client::internal {
namespace {

constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
// Octets of requests gathered into one ValidateBatchRequest at most (the
// server's limits.max_message_bytes defaults to 1 MiB).
constexpr size_t kMaxMessageBytes = 256 * 1024;
constexpr char kStreamMethod[] =
    "/rcptguard.v1.RecipientValidation/ValidateStream";
constexpr char kBatchMethod[] =
    "/rcptguard.v1.RecipientValidation/ValidateBatchStream";

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      ToAbsl(s.error_message()));
}

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool ParseBuffer(grpc::ByteBuffer* bytes, google::protobuf::Message* message) {
  grpc::ProtoBufferReader reader(bytes);
  return reader.status().ok() && message->ParseFromZeroCopyStream(&reader);
}

bool ParseBuffer(grpc_byte_buffer* bytes, google::protobuf::Message* message) {
  grpc_byte_buffer_reader reader;
  if (grpc_byte_buffer_reader_init(&reader, bytes) == 0) return false;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  const bool ok = message->ParseFromArray(
      GRPC_SLICE_START_PTR(all), static_cast<int>(GRPC_SLICE_LENGTH(all)));
  grpc_slice_unref(all);
  return ok;
}

// "request_id N: ..." / "message N of the stream: ..." (ValidateStream's
// refusals, validation.proto): N, or 0.
uint64_t RefusedNumber(std::string_view message, std::string_view prefix,
                       std::string_view suffix) {
  if (!absl::StartsWith(ToAbsl(message), ToAbsl(prefix))) return 0;
  message.remove_prefix(prefix.size());
  const size_t end = message.find(suffix);
  if (end == std::string_view::npos) return 0;
  uint64_t n = 0;
  if (!absl::SimpleAtoi(ToAbsl(message.substr(0, end)), &n)) return 0;
  return n;
}

}  // namespace

// One stream. Its tags call back into the transport; it is deleted by the
// transport once its Finish and every other operation have come back.
struct StreamTransport::Conn {
  struct Tag final : CqTag {
    Conn* conn = nullptr;
    void (StreamTransport::*handler)(Conn*, bool) = nullptr;
    void Proceed(bool ok) override { (conn->transport->*handler)(conn, ok); }
  };

  // What gRPC's core hands the completion queue for a round trip; the
  // queue's Next() gives back `tag`, as for the C++ API's operations.
  struct CoreTag final : grpc::internal::CompletionQueueTag {
    Tag* tag = nullptr;
    bool FinalizeResult(void** out, bool* /*status*/) override {
      *out = static_cast<CqTag*>(tag);
      return true;
    }
  };

  Conn(StreamTransport* t, StreamMode m, bool rt)
      : transport(t), mode(m), round_trips(rt) {
    trip_core_tag.tag = &trip_tag;
    for (auto [tag, handler] :
         {std::pair{&start_tag, &StreamTransport::OnStart},
          std::pair{&read_tag, &StreamTransport::OnRead},
          std::pair{&trip_tag, &StreamTransport::OnTrip},
          std::pair{&write_tag, &StreamTransport::OnWrite},
          std::pair{&writes_done_tag, &StreamTransport::OnWritesDone},
          std::pair{&finish_tag, &StreamTransport::OnFinish}}) {
      tag->conn = this;
      tag->handler = handler;
    }
  }

  ~Conn() {
    if (trip_send != nullptr) grpc_byte_buffer_destroy(trip_send);
    if (trip_recv != nullptr) grpc_byte_buffer_destroy(trip_recv);
  }

  StreamTransport* const transport;
  const StreamMode mode;
  // One message at a time, each with the read of its answer in one core
  // batch (see StartTripLocked).
  const bool round_trips;
  grpc::ClientContext context;  // outlives rw (declared first)
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> rw;
  Tag start_tag, read_tag, trip_tag, write_tag, writes_done_tag, finish_tag;
  CoreTag trip_core_tag;
  grpc::ByteBuffer write_buf;
  grpc::ByteBuffer read_buf;              // the completion thread's only
  grpc_byte_buffer* trip_send = nullptr;  // the round trip's message
  grpc_byte_buffer* trip_recv = nullptr;  // its answer (null: stream ended)
  grpc::Status status;

  // Guarded by the transport's mu_.
  int ops = 0;  // operations started and not yet back
  bool started = false;
  bool writing = false;
  bool read_failed = false;  // no more answers will come
  bool finish_started = false;
  bool finished = false;
  bool detached = false;     // not current_ any more
  bool answered = false;     // at least one answer arrived
  bool half_closed = false;  // WritesDone sent: the server may finish
  uint64_t messages = 0;     // written so far
  std::deque<Message> in_flight;
  std::optional<absl::Status> cancel_reason;
};

StreamTransport::StreamTransport(std::shared_ptr<grpc::Channel> channel,
                                 grpc::CompletionQueue* cq,
                                 const StreamTransportOptions& options)
    : channel_(std::move(channel)),
      cq_(cq),
      options_(options),
      stub_(channel_),
      mode_(options.mode),
      backoff_(kFirstBackoff) {}

StreamTransport::~StreamTransport() {
  absl::MutexLock lock(&mu_);
  for (Conn* c : conns_) delete c;  // only if Shutdown() was skipped
}

bool StreamTransport::unary_only() const {
  absl::MutexLock lock(&mu_);
  return unary_only_;
}

StreamTransportStats StreamTransport::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void StreamTransport::Deliver(std::vector<Outcome>* out) {
  for (Outcome& o : *out) o.done(std::move(o.result));
  out->clear();
}

void StreamTransport::Send(const v1::ValidateRequest* request,
                           absl::Time deadline, Done done) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) {
      refused = absl::UnavailableError("client shutting down");
    } else if (unary_only_) {
      refused = absl::UnimplementedError("server has no stream methods");
    } else if (current_ == nullptr && absl::Now() < next_connect_) {
      refused = absl::UnavailableError(absl::StrCat(
          "rcptguard stream reconnecting after: ", last_error_.ToString()));
    } else {
      if (current_ == nullptr) StartConnLocked();
      queue_.push_back(Entry{request, deadline, std::move(done)});
      MaybeWriteLocked(current_);
      return;
    }
  }
  done(refused);
}

void StreamTransport::StartConnLocked() {
  auto* conn = new Conn(
      this, mode_,
      mode_ == StreamMode::kBatchStream && options_.max_in_flight == 1);
  conns_.push_back(conn);
  current_ = conn;
  ++stats_.streams;
  conn->rw = stub_.PrepareCall(
      &conn->context,
      mode_ == StreamMode::kBatchStream ? kBatchMethod : kStreamMethod, cq_);
  ++conn->ops;
  conn->rw->StartCall(&conn->start_tag);
}

void StreamTransport::MaybeWriteLocked(Conn* conn) {
  if (conn == nullptr || conn != current_ || !conn->started || conn->writing ||
      conn->read_failed || queue_.empty()) {
    return;
  }
  const int limit = conn->mode == StreamMode::kStream
                        ? std::max(options_.max_in_flight, 32)
                        : options_.max_in_flight;
  if (static_cast<int>(conn->in_flight.size()) >= limit) return;
  Message message;
  std::string bytes;
  if (conn->mode == StreamMode::kStream) {
    message.id = conn->messages + 1;
    Entry entry = std::move(queue_.front());
    queue_.pop_front();
    entry.wire_id = message.id;
    entry.request->AppendToString(&bytes);
    // request_id (field 1, varint) once more at the end: the last value
    // wins, so the server sees the transport's id; the caller's own id is
    // restored in the answer.
    bytes.push_back('\x08');
    AppendVarint(entry.wire_id, &bytes);
    message.entries.push_back(std::move(entry));
  } else {
    message.id = next_batch_id_++;
    bytes.push_back('\x08');
    AppendVarint(message.id, &bytes);
    const size_t n = std::min<size_t>(
        queue_.size(), static_cast<size_t>(options_.max_requests_per_message));
    message.entries.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t size = queue_.front().request->ByteSizeLong();
      // The server refuses a message over its limits.max_message_bytes as
      // a whole: a large request leaves in a message of its own rather
      // than take others down with it.
      if (i > 0 && bytes.size() + size > kMaxMessageBytes) break;
      Entry entry = std::move(queue_.front());
      queue_.pop_front();
      bytes.push_back('\x12');
      AppendVarint(size, &bytes);
      entry.request->AppendToString(&bytes);
      message.entries.push_back(std::move(entry));
    }
  }
  ++conn->messages;
  ++stats_.messages;
  stats_.requests += message.entries.size();
  conn->in_flight.push_back(std::move(message));
  conn->writing = true;
  ++conn->ops;
  if (conn->round_trips) {
    StartTripLocked(conn, bytes);
    return;
  }
  grpc::Slice slice(bytes);
  conn->write_buf = grpc::ByteBuffer(&slice, 1);
  conn->rw->Write(conn->write_buf, &conn->write_tag);
}

// A round trip: the message and the read of its answer go to gRPC's core
// as one batch, which completes once, when the answer has arrived. With
// the C++ API's Write and Read, the write's completion alone woke the
// completion-queue thread (a write started on the caller's thread kicks
// the thread polling the queue): a lookup travelling alone cost the
// client three thread wake-ups, now two (BENCHMARKS.md, issue 15).
// With one message in flight at a time (group commit's default) nothing
// is lost: the stream's end, which a standing Read would have seen, is
// seen by Finish, posted when the stream starts. That Finish also asks
// for the server's initial metadata, which gRPC delivers before any
// message: without it no answer would ever arrive.
void StreamTransport::StartTripLocked(Conn* conn, const std::string& bytes) {
  grpc_slice slice = grpc_slice_from_copied_buffer(bytes.data(), bytes.size());
  conn->trip_send = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  grpc_op ops[2] = {};
  ops[0].op = GRPC_OP_SEND_MESSAGE;
  ops[0].data.send_message.send_message = conn->trip_send;
  ops[1].op = GRPC_OP_RECV_MESSAGE;
  ops[1].data.recv_message.recv_message = &conn->trip_recv;
  const grpc_call_error error = grpc_call_start_batch(
      conn->context.c_call(), ops, 2, &conn->trip_core_tag, nullptr);
  if (error != GRPC_CALL_OK) {
    // Only a misuse of the API gets here (an operation already in
    // flight); the stream is given up and its requests fail.
    LogError("rcptguard_stream_batch",
             {{"error", grpc_call_error_to_string(error)}});
    --conn->ops;
    conn->writing = false;
    CancelLocked(conn, absl::InternalError(absl::StrCat(
                           "rcptguard stream: core batch refused: ",
                           grpc_call_error_to_string(error))));
  }
}

void StreamTransport::MaybeFinishLocked(Conn* conn) {
  if (!conn->read_failed || conn->writing || conn->finish_started) return;
  conn->finish_started = true;
  ++conn->ops;
  conn->rw->Finish(&conn->status, &conn->finish_tag);
}

void StreamTransport::DetachLocked(Conn* conn) {
  conn->detached = true;
  if (current_ == conn) current_ = nullptr;
}

void StreamTransport::CancelLocked(Conn* conn, absl::Status why) {
  if (!conn->cancel_reason.has_value()) conn->cancel_reason = std::move(why);
  DetachLocked(conn);
  conn->context.TryCancel();
}

bool StreamTransport::MaybeDestroyLocked(Conn* conn) {
  if (!conn->finished || conn->ops > 0) return false;
  conns_.erase(std::find(conns_.begin(), conns_.end(), conn));
  if (current_ == conn) current_ = nullptr;
  delete conn;
  return true;
}

void StreamTransport::FailQueueLocked(const absl::Status& why,
                                      std::vector<Outcome>* out) {
  for (Entry& e : queue_) out->push_back(Outcome{std::move(e.done), why});
  queue_.clear();
}

void StreamTransport::NoMoreAnswersLocked(Conn* conn) {
  conn->read_failed = true;
  DetachLocked(conn);
  MaybeFinishLocked(conn);
  MaybeDestroyLocked(conn);
}

void StreamTransport::OnStart(Conn* conn, bool ok) {
  absl::MutexLock lock(&mu_);
  --conn->ops;
  if (!ok) {
    NoMoreAnswersLocked(conn);
    return;
  }
  conn->started = true;
  ++conn->ops;
  if (conn->round_trips) {
    // The stream's end (server gone, drain, cancel) is seen here; each
    // answer is read by its round trip.
    conn->finish_started = true;
    conn->rw->Finish(&conn->status, &conn->finish_tag);
  } else {
    conn->rw->Read(&conn->read_buf, &conn->read_tag);
  }
  MaybeWriteLocked(conn);
}

void StreamTransport::OnTrip(Conn* conn, bool ok) {
  std::vector<Outcome> out;
  {
    absl::MutexLock lock(&mu_);
    --conn->ops;
    conn->writing = false;
    grpc_byte_buffer_destroy(conn->trip_send);
    conn->trip_send = nullptr;
    grpc_byte_buffer* answer = conn->trip_recv;
    conn->trip_recv = nullptr;
    if (!ok || answer == nullptr) {
      // The message or its answer failed, or the stream ended first:
      // Finish (already posted) tells why and fails what is in flight.
      if (answer != nullptr) grpc_byte_buffer_destroy(answer);
      NoMoreAnswersLocked(conn);
      return;
    }
    Answer(
        conn,
        [answer](google::protobuf::Message* m) {
          return ParseBuffer(answer, m);
        },
        &out);
    grpc_byte_buffer_destroy(answer);
    // Group commit: what queued while the answer was awaited leaves now.
    if (!conn->read_failed) MaybeWriteLocked(conn);
    MaybeDestroyLocked(conn);
  }
  Deliver(&out);
}

void StreamTransport::OnWrite(Conn* conn, bool ok) {
  absl::MutexLock lock(&mu_);
  --conn->ops;
  conn->writing = false;
  conn->write_buf.Clear();
  if (!ok) {
    // The stream is broken; the pending read fails too and Finish tells
    // why. Nothing more is written on it.
    DetachLocked(conn);
    MaybeFinishLocked(conn);
  } else if (conn->read_failed) {
    MaybeFinishLocked(conn);
  } else {
    MaybeWriteLocked(conn);
  }
  MaybeDestroyLocked(conn);
}

void StreamTransport::OnRead(Conn* conn, bool ok) {
  std::vector<Outcome> out;
  {
    absl::MutexLock lock(&mu_);
    --conn->ops;
    if (!ok) {
      NoMoreAnswersLocked(conn);
      return;
    }
    Answer(
        conn,
        [conn](google::protobuf::Message* m) {
          return ParseBuffer(&conn->read_buf, m);
        },
        &out);
    conn->read_buf.Clear();
    if (!conn->read_failed) {
      ++conn->ops;
      conn->rw->Read(&conn->read_buf, &conn->read_tag);
      // Group commit: what queued while the answer was awaited leaves now.
      MaybeWriteLocked(conn);
    }
  }
  Deliver(&out);
}

void StreamTransport::Answer(
    Conn* conn, absl::FunctionRef<bool(google::protobuf::Message*)> parse,
    std::vector<Outcome>* out) {
  if (conn->in_flight.empty()) {
    CancelLocked(
        conn, absl::InternalError("rcptguard stream: an answer to no request"));
    return;
  }
  Message message = std::move(conn->in_flight.front());
  conn->in_flight.pop_front();
  absl::Status broken;
  if (conn->mode == StreamMode::kStream) {
    v1::ValidateResponse response;
    if (!parse(&response)) {
      broken = absl::InternalError("rcptguard stream: answer does not parse");
    } else if (response.request_id() != message.entries[0].wire_id) {
      broken = absl::InternalError(absl::StrCat(
          "rcptguard stream: answer for request ", response.request_id(),
          ", expected ", message.entries[0].wire_id));
    } else {
      Entry& e = message.entries[0];
      response.set_request_id(e.request->request_id());
      out->push_back(Outcome{std::move(e.done), std::move(response)});
    }
  } else {
    v1::ValidateBatchResponse response;
    if (!parse(&response)) {
      broken = absl::InternalError("rcptguard stream: answer does not parse");
    } else if (response.batch_id() != message.id ||
               static_cast<size_t>(response.results_size()) !=
                   message.entries.size()) {
      broken = absl::InternalError(absl::StrCat(
          "rcptguard stream: answer for batch ", response.batch_id(), " with ",
          response.results_size(), " results, expected batch ", message.id,
          " with ", message.entries.size()));
    } else {
      for (size_t i = 0; i < message.entries.size(); ++i) {
        v1::ValidateBatchResult* r =
            response.mutable_results(static_cast<int>(i));
        Entry& e = message.entries[i];
        if (r->has_response()) {
          out->push_back(
              Outcome{std::move(e.done), std::move(*r->mutable_response())});
        } else {
          absl::StatusCode code =
              static_cast<absl::StatusCode>(r->error().code());
          if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
          out->push_back(
              Outcome{std::move(e.done),
                      absl::Status(code, ToAbsl(r->error().message()))});
        }
      }
    }
  }
  if (!broken.ok()) {
    for (Entry& e : message.entries) {
      out->push_back(Outcome{std::move(e.done), broken});
    }
    CancelLocked(conn, broken);
    return;
  }
  conn->answered = true;
  backoff_ = kFirstBackoff;
}

void StreamTransport::OnWritesDone(Conn* conn, bool /*ok*/) {
  absl::MutexLock lock(&mu_);
  --conn->ops;
  MaybeDestroyLocked(conn);
}

void StreamTransport::OnFinish(Conn* conn, bool /*ok*/) {
  std::vector<Outcome> out;
  {
    absl::MutexLock lock(&mu_);
    --conn->ops;
    conn->finished = true;
    DetachLocked(conn);
    const absl::Status status = FromGrpc(conn->status);
    absl::Status why = conn->cancel_reason.value_or(status);
    if (why.ok()) {
      why = absl::UnavailableError(
          "rcptguard stream ended before answering every request");
    }
    // Requests the server provably never judged go out again: all of them
    // when it does not know the method, those after a refused one on
    // ValidateStream.
    std::vector<Entry> again;
    std::vector<Entry> failed;
    const bool unimplemented =
        !conn->cancel_reason.has_value() && !conn->answered &&
        status.code() == absl::StatusCode::kUnimplemented;
    uint64_t refused_id = 0, refused_message = 0;
    if (conn->mode == StreamMode::kStream && !conn->cancel_reason.has_value() &&
        !status.ok()) {
      refused_id = RefusedNumber(ToStd(status.message()), "request_id ", ":");
      refused_message =
          RefusedNumber(ToStd(status.message()), "message ", " of the stream:");
    }
    bool after_refusal = false;
    for (Message& m : conn->in_flight) {
      for (Entry& e : m.entries) {
        if (unimplemented || after_refusal) {
          again.push_back(std::move(e));
          continue;
        }
        if ((refused_id != 0 && e.wire_id == refused_id) ||
            (refused_message != 0 && m.id == refused_message)) {
          after_refusal = true;
          // The refusal is this request's own (as a unary call's would
          // be), without the stream's prefix.
          std::string_view text = ToStd(status.message());
          text.remove_prefix(std::min(text.size(), text.find(": ") + 2));
          out.push_back(Outcome{std::move(e.done),
                                absl::Status(status.code(), ToAbsl(text))});
          continue;
        }
        failed.push_back(std::move(e));
      }
    }
    conn->in_flight.clear();
    for (Entry& e : failed) out.push_back(Outcome{std::move(e.done), why});
    if (unimplemented) {
      if (mode_ == StreamMode::kBatchStream) {
        mode_ = StreamMode::kStream;
        LogWarning("rcptguard_stream_fallback",
                   {{"from", "ValidateBatchStream"}, {"to", "ValidateStream"}});
      } else {
        unary_only_ = true;
        LogWarning("rcptguard_stream_fallback",
                   {{"from", "ValidateStream"}, {"to", "Validate"}});
      }
    }
    stats_.resent += again.size();
    for (auto it = again.rbegin(); it != again.rend(); ++it) {
      queue_.push_front(std::move(*it));
    }
    if (!conn->answered && !conn->half_closed &&
        !conn->cancel_reason.has_value() && !unimplemented && refused_id == 0 &&
        refused_message == 0) {
      // Never answered: the server is likely unreachable. Back off.
      next_connect_ = absl::Now() + backoff_;
      backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    }
    last_error_ = why;
    if (!queue_.empty() && current_ == nullptr) {
      if (shutdown_) {
        FailQueueLocked(absl::UnavailableError("client shutting down"), &out);
      } else if (unary_only_) {
        FailQueueLocked(
            absl::UnimplementedError("server has no stream methods"), &out);
      } else if (absl::Now() < next_connect_) {
        FailQueueLocked(
            absl::UnavailableError(absl::StrCat(
                "rcptguard stream reconnecting after: ", why.ToString())),
            &out);
      } else {
        StartConnLocked();
      }
    }
    MaybeDestroyLocked(conn);
  }
  Deliver(&out);
}

void StreamTransport::CheckDeadlines(absl::Time now) {
  std::vector<Outcome> out;
  {
    absl::MutexLock lock(&mu_);
    const absl::Status late = absl::DeadlineExceededError(
        "no answer from rcptguard within the deadline");
    bool queued_late = false;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->deadline <= now) {
        out.push_back(Outcome{std::move(it->done), late});
        it = queue_.erase(it);
        queued_late = true;
      } else {
        ++it;
      }
    }
    // A stream that never started (its start never came back) would hold
    // every later request in the queue: give it up.
    if (queued_late && current_ != nullptr && !current_->started) {
      ++stats_.cancelled;
      CancelLocked(current_, late);
    }
    // A draining server (GOAWAY) keeps answering open streams until its
    // drain timeout, then cuts them: an idle stream is closed at once, so
    // the server can stop early and new requests go to a new connection.
    if (current_ != nullptr && current_->started && !current_->writing &&
        current_->in_flight.empty() && queue_.empty() &&
        channel_->GetState(false) != GRPC_CHANNEL_READY) {
      Conn* conn = current_;
      DetachLocked(conn);
      conn->half_closed = true;
      ++conn->ops;
      conn->rw->WritesDone(&conn->writes_done_tag);
    }
    for (Conn* conn : conns_) {
      if (conn->cancel_reason.has_value() || conn->finished) continue;
      bool expired = false;
      for (const Message& m : conn->in_flight) {
        for (const Entry& e : m.entries) expired |= e.deadline <= now;
      }
      if (expired) {
        ++stats_.cancelled;
        CancelLocked(conn, late);
      }
    }
  }
  Deliver(&out);
}

void StreamTransport::Shutdown() {
  std::vector<Outcome> out;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    FailQueueLocked(absl::UnavailableError("client shutting down"), &out);
    for (Conn* conn : conns_) {
      if (!conn->finished) {
        CancelLocked(conn, absl::UnavailableError("client shutting down"));
      }
    }
  }
  Deliver(&out);
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::vector<Conn*>* conns) { return conns->empty(); }, &conns_));
}

}  // namespace rcptguard::client::internal
