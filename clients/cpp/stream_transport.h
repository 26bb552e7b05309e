// Internal to the client library (client.h): carries ValidateRequests over
// one long-lived gRPC stream instead of one unary call each.
//
// Two encodings, one machinery:
//   - kBatchStream (RecipientValidation.ValidateBatchStream): group
//     commit. A request goes out at once when no message is in flight on
//     the stream (no added latency when idle); while one is (at most
//     `max_in_flight` messages), requests queue and leave together, up to
//     `max_requests_per_message` (and 256 KiB) per ValidateBatchRequest,
//     when an answer returns. Each request keeps its own context: the server
//     judges each one as a unary Validate (one harvest observation of its own
//     client).
//   - kStream (RecipientValidation.ValidateStream): one request per
//     message, pipelined (up to `max_in_flight` unanswered), answers
//     matched by request_id (the transport's own ids on the wire; the
//     caller's id is given back in the answer).
// With one message in flight (max_in_flight 1, kBatchStream's default),
// each message and the read of its answer are one operation of gRPC's
// core (a round trip), which completes once: a lookup travelling alone
// wakes the completion-queue thread once, for its answer.
// A server without ValidateBatchStream (UNIMPLEMENTED before any answer)
// makes the transport fall back to kStream, and one without ValidateStream
// to unary calls (unary_only()); the requests of that stream were never
// judged and are sent again.
//
// Deadlines: every request has one. CheckDeadlines(), called by the client
// at least every tick, fails queued requests past theirs and cancels a
// stream whose unanswered requests are past theirs; everything pending on
// that stream then fails with DEADLINE_EXCEEDED, and the next request opens
// a new stream. A stream that ends (server restart, drain, reset) fails
// its unanswered requests with the stream's status (UNAVAILABLE when it
// ended cleanly); requests that provably were never read (after a
// ValidateStream refusal of an earlier one, or UNIMPLEMENTED) are sent
// again on the next stream. An idle stream whose channel is no longer
// READY (the server sent GOAWAY: it is draining) is half-closed at the
// next check, so the server need not wait out its drain timeout for it.
// Nothing else is ever resent: the caller
// applies the retry rules (client.h: dry lookups only). After a stream
// that failed without a single answer, new streams wait a backoff (100 ms
// doubling to max_backoff) and requests meanwhile fail fast with
// UNAVAILABLE, as unary calls on a channel in TRANSIENT_FAILURE do.
//
// Thread safety: Send() and CheckDeadlines() from any thread; Proceed() of
// the tags on the client's one completion-queue thread. `done` callbacks
// run on that thread or on the caller's (fast failures), never under the
// transport's lock, and may call Send().
#ifndef RCPTGUARD_CLIENTS_CPP_STREAM_TRANSPORT_H_
#define RCPTGUARD_CLIENTS_CPP_STREAM_TRANSPORT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/generic_stub.h"
#include "rcptguard/v1/validation.pb.h"

namespace rcptguard::client::internal {

// What the client's completion queue hands back: the queue's thread calls
// Proceed() with the operation's outcome.
class CqTag {
 public:
  virtual void Proceed(bool ok) = 0;

 protected:
  ~CqTag() = default;
};

enum class StreamMode { kStream, kBatchStream };

struct StreamTransportOptions {
  StreamMode mode = StreamMode::kBatchStream;
  int max_in_flight = 1;
  int max_requests_per_message = 256;
  absl::Duration max_backoff = absl::Seconds(2);
};

struct StreamTransportStats {
  uint64_t streams = 0;    // streams opened
  uint64_t messages = 0;   // stream messages written
  uint64_t requests = 0;   // requests written (a message holds several)
  uint64_t cancelled = 0;  // streams cancelled at a deadline
  uint64_t resent = 0;     // requests sent again (never read by the server)
};

class StreamTransport {
 public:
  using Done = std::function<void(absl::StatusOr<v1::ValidateResponse>)>;

  StreamTransport(std::shared_ptr<grpc::Channel> channel,
                  grpc::CompletionQueue* cq,
                  const StreamTransportOptions& options);
  // Call Shutdown() first.
  ~StreamTransport();

  // Sends `*request` (valid until `done` runs). `done` runs exactly once.
  void Send(const v1::ValidateRequest* request, absl::Time deadline, Done done);
  // See the file comment.
  void CheckDeadlines(absl::Time now);
  // Fails what is queued, cancels the streams and returns when every
  // operation on them has come back through the completion queue (which
  // must still be polled). Send() afterwards fails at once.
  void Shutdown();

  // True once the server answered UNIMPLEMENTED to both stream methods:
  // the caller should use unary calls.
  bool unary_only() const;
  StreamTransportStats stats() const;

 private:
  struct Entry {
    const v1::ValidateRequest* request;
    absl::Time deadline;
    Done done;
    uint64_t wire_id = 0;  // kStream: the request_id sent
  };
  struct Message {
    uint64_t id;  // batch_id, or the stream message number (kStream)
    std::vector<Entry> entries;
  };
  struct Conn;
  // A failure or answer to deliver once the lock is released.
  struct Outcome {
    Done done;
    absl::StatusOr<v1::ValidateResponse> result;
  };

  void StartConnLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeWriteLocked(Conn* conn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinishLocked(Conn* conn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops using `conn` for new requests (it finishes on its own).
  void DetachLocked(Conn* conn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelLocked(Conn* conn, absl::Status why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes `conn` once nothing of it is in flight; true when it did.
  bool MaybeDestroyLocked(Conn* conn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Its start or a read failed: no answer will come; it detaches, finishes
  // and goes once nothing of it is in flight (may delete `conn`).
  void NoMoreAnswersLocked(Conn* conn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailQueueLocked(const absl::Status& why, std::vector<Outcome>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void OnStart(Conn* conn, bool ok);
  void OnRead(Conn* conn, bool ok);
  void OnTrip(Conn* conn, bool ok);
  void OnWrite(Conn* conn, bool ok);
  void OnWritesDone(Conn* conn, bool ok);
  void OnFinish(Conn* conn, bool ok);
  // Matches the answer that `parse` reads to the oldest message.
  void Answer(Conn* conn,
              absl::FunctionRef<bool(google::protobuf::Message*)> parse,
              std::vector<Outcome>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes a message and reads its answer in one core batch (conn's
  // round_trips mode; see the .cc).
  void StartTripLocked(Conn* conn, const std::string& bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  static void Deliver(std::vector<Outcome>* out);

  // Constant after construction.
  const std::shared_ptr<grpc::Channel> channel_;
  grpc::CompletionQueue* const cq_;
  const StreamTransportOptions options_;
  grpc::GenericStub stub_;

  mutable absl::Mutex mu_;
  StreamMode mode_ ABSL_GUARDED_BY(mu_);
  bool unary_only_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Requests not yet written, oldest first.
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  // The stream new requests go to (null: open one on demand).
  Conn* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Every stream not yet destroyed, current_ included.
  std::vector<Conn*> conns_ ABSL_GUARDED_BY(mu_);
  absl::Time next_connect_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  uint64_t next_batch_id_ ABSL_GUARDED_BY(mu_) = 1;
  StreamTransportStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rcptguard::client::internal

#endif  // RCPTGUARD_CLIENTS_CPP_STREAM_TRANSPORT_H_
