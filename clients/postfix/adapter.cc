#include "clients/postfix/adapter.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <functional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clients/postfix/adapter_metrics.h"
#include "clients/postfix/listener.h"
#include "clients/postfix/protocol_handling.h"
#include "common/log.h"
#include "common/strings.h"

namespace rcptguard::postfix {
namespace {

using internal::ActionClass;
using internal::AdapterMetrics;
using internal::AnswerLookup;
using internal::ErrnoStatus;
using internal::ErrnoText;
using internal::FrameReply;
using internal::Listen;
using internal::Listener;
using internal::LookupAnswer;
using internal::PeerName;
using internal::PlanPolicyRequest;
using internal::PlanSocketmapRequest;
using internal::Protocol;
using internal::ProtocolName;
using internal::RequestPlan;

// epoll data for the fds that are not connections.
constexpr uint64_t kPolicyListenerId = 1;
constexpr uint64_t kSocketmapListenerId = 2;
constexpr uint64_t kWakeId = 3;
constexpr uint64_t kFirstConnectionId = 16;

constexpr size_t kMaxPendingOutput = 64 * 1024;

// True on a thread while it holds Mailbox::state_mu (the loop thread
// between its epoll_waits, or a thread answering a lookup): a lookup whose
// callback runs at once, inside CheckRecipient, must not take the lock
// again; its answer goes through the mailbox.
thread_local bool t_holds_state = false;

// What the adapter shares with the client library's callbacks; shared, so
// a late callback after the adapter is gone finds a live object.
//
// A lookup's answer is given by the thread that receives it (the client's
// completion thread), under state_mu, as long as `owner` is set: that saves
// the loop a wake-up per lookup. Answers that cannot be given there (a
// callback run inside CheckRecipient, on a thread already holding the
// lock) are posted for the loop.
//
// Thread safety: Post() and Wake() from any thread (Wake() also from a
// signal handler); Take() on the loop thread only; state_mu guards the
// whole adapter state (Adapter::Impl), `owner` included.
class Mailbox {
 public:
  absl::Mutex state_mu;
  Adapter::Impl* owner ABSL_GUARDED_BY(state_mu) = nullptr;

  struct Item {
    uint64_t connection;
    client::RecipientResult result;
  };

  Mailbox() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Mailbox() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

  void Post(Item item) {
    absl::MutexLock lock(&mu_);
    items_.push_back(std::move(item));
    if (!signaled_) {
      signaled_ = true;
      Wake();
    }
  }
  // Async-signal-safe.
  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof(one));
  }
  std::vector<Item> Take() {
    uint64_t count;
    [[maybe_unused]] ssize_t n = read(fd_, &count, sizeof(count));
    absl::MutexLock lock(&mu_);
    signaled_ = false;
    return std::exchange(items_, {});
  }

 private:
  const int fd_;
  absl::Mutex mu_;
  std::vector<Item> items_ ABSL_GUARDED_BY(mu_);
  bool signaled_ ABSL_GUARDED_BY(mu_) = false;
};

// Holds a Mailbox's state lock and marks the thread as holding it.
class ABSL_SCOPED_LOCKABLE StateLock {
 public:
  explicit StateLock(Mailbox* m) ABSL_EXCLUSIVE_LOCK_FUNCTION(m->state_mu)
      : mu_(&m->state_mu) {
    Lock();
  }
  ~StateLock() ABSL_UNLOCK_FUNCTION() {
    if (held_) Unlock();
  }
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_->Lock();
    held_ = true;
    t_holds_state = true;
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    t_holds_state = false;
    held_ = false;
    mu_->Unlock();
  }

 private:
  absl::Mutex* const mu_;
  bool held_ = false;
};

}  // namespace

class Adapter::Impl {
 public:
  Impl(const AdapterOptions& options, client::Client* client,
       std::shared_ptr<prometheus::Registry> registry,
       std::unique_ptr<AdapterMetrics> metrics)
      : options_(options),
        client_(client),
        registry_(std::move(registry)),
        metrics_(std::move(metrics)),
        mailbox_(std::make_shared<Mailbox>()) {}

  ~Impl() {
    {
      absl::MutexLock lock(&mailbox_->state_mu);
      mailbox_->owner = nullptr;
    }
    for (auto& [id, c] : connections_) close(c->fd);
    for (Listener* l : {&policy_, &socketmap_}) CloseListener(*l);
    if (epoll_ >= 0) close(epoll_);
  }

  absl::Status Init() {
    if (mailbox_->fd() < 0) return ErrnoStatus("eventfd", errno);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return ErrnoStatus("epoll_create1", errno);
    if (!options_.policy_listen.empty()) {
      absl::StatusOr<ListenAddress> a =
          ParseListenAddress(options_.policy_listen);
      if (!a.ok()) return a.status();
      absl::StatusOr<Listener> l = Listen(*a, options_.unix_socket_mode);
      if (!l.ok()) return l.status();
      policy_ = *l;
      Watch(policy_.fd, kPolicyListenerId, EPOLLIN);
    }
    if (!options_.socketmap_listen.empty()) {
      absl::StatusOr<ListenAddress> a =
          ParseListenAddress(options_.socketmap_listen);
      if (!a.ok()) return a.status();
      absl::StatusOr<Listener> l = Listen(*a, options_.unix_socket_mode);
      if (!l.ok()) return l.status();
      socketmap_ = *l;
      Watch(socketmap_.fd, kSocketmapListenerId, EPOLLIN);
    }
    Watch(mailbox_->fd(), kWakeId, EPOLLIN);
    absl::MutexLock lock(&mailbox_->state_mu);
    mailbox_->owner = this;
    return absl::OkStatus();
  }

  int policy_port() const { return policy_.port; }
  int socketmap_port() const { return socketmap_.port; }

  void Stop() {
    stop_requested_.store(true, std::memory_order_relaxed);
    mailbox_->Wake();
  }

  absl::Status Run() {
    LogInfo("postfix_adapter_started",
            {{"policy", options_.policy_listen},
             {"policy_port", policy_.port},
             {"socketmap", options_.socketmap_listen},
             {"socketmap_port", socketmap_.port},
             {"failure_policy",
              client::FailurePolicyName(client_->options().failure_policy)}});
    std::array<epoll_event, 256> events;
    absl::Time next_sweep = absl::Now() + absl::Seconds(1);
    // The loop holds the state lock except while it waits in epoll_wait.
    StateLock lock(mailbox_.get());
    for (;;) {
      absl::Time wake = next_sweep;
      if (!timers_.empty()) wake = std::min(wake, timers_.front().at);
      if (draining_) wake = std::min(wake, drain_deadline_);
      const absl::Duration wait = wake - absl::Now();
      const int timeout_ms = wait <= absl::ZeroDuration()
                                 ? 0
                                 : static_cast<int>(std::min<int64_t>(
                                       absl::ToInt64Milliseconds(absl::Ceil(
                                           wait, absl::Milliseconds(1))),
                                       1000));
      lock.Unlock();
      const int n = epoll_wait(epoll_, events.data(),
                               static_cast<int>(events.size()), timeout_ms);
      const int wait_errno = errno;  // before Lock() may change it
      lock.Lock();
      if (n < 0 && wait_errno != EINTR) {
        return ErrnoStatus("epoll_wait", wait_errno);
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kPolicyListenerId) {
          Accept(policy_, Protocol::kPolicy);
        } else if (id == kSocketmapListenerId) {
          Accept(socketmap_, Protocol::kSocketmap);
        } else if (id == kWakeId) {
          for (Mailbox::Item& item : mailbox_->Take()) Complete(item);
        } else {
          OnEvent(id, events[i].events);
        }
      }
      const absl::Time now = absl::Now();
      RunTimers(now);
      if (now >= next_sweep) {
        Sweep(now);
        next_sweep = now + absl::Seconds(1);
      }
      if (!draining_ && stop_requested_.load(std::memory_order_relaxed)) {
        BeginDrain(now);
      }
      if (draining_) {
        if (connections_.empty()) {
          LogInfo("postfix_adapter_drained");
          return absl::OkStatus();
        }
        if (now >= drain_deadline_) {
          LogWarning("postfix_adapter_drain_timeout",
                     {{"connections_cut", connections_.size()}});
          // Cut now, not when the Adapter goes: their peers learn at once
          // (an answer still on its way finds no connection).
          while (!connections_.empty()) {
            Close(*connections_.begin()->second);
          }
          return absl::OkStatus();
        }
      }
    }
  }

 private:
  struct Connection {
    enum class State { kIdle, kWaiting, kDelaying };
    uint64_t id = 0;
    int fd = -1;
    Protocol protocol = Protocol::kPolicy;
    std::string peer;
    std::unique_ptr<PolicyParser> policy;
    std::unique_ptr<NetstringDecoder> netstring;
    State state = State::kIdle;
    uint32_t interest = 0;
    std::string out;
    bool close_after_write = false;
    absl::Time last_activity;
    absl::Time request_start;
    std::string delayed_reply;
    std::string_view delayed_outcome;  // points at a static label
  };

  struct Timer {
    absl::Time at;
    uint64_t connection;
    bool operator>(const Timer& o) const { return at > o.at; }
  };

  void Watch(int fd, uint64_t id, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }

  void SetInterest(Connection& c, uint32_t events) {
    if (c.interest == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = c.id;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    c.interest = events;
  }

  // What the connection should be woken for in its state.
  void UpdateInterest(Connection& c) {
    uint32_t events = 0;
    if (!c.out.empty()) events |= EPOLLOUT;
    // While a request is being answered further bytes wait in the socket;
    // EPOLLRDHUP alone would fire on every wait once the peer half-closes.
    // Reading interest is dropped lazily, by OnEvent, only when the socket
    // does turn readable meanwhile: Postfix sends nothing while it waits
    // for an answer, so a request costs no epoll_ctl calls at all.
    const bool keep_reading =
        c.state == Connection::State::kIdle || (c.interest & EPOLLIN) != 0;
    if (keep_reading && !c.close_after_write) {
      events |= EPOLLIN | EPOLLRDHUP;
    }
    SetInterest(c, events);
  }

  void CloseListener(Listener& l) {
    if (l.fd < 0) return;
    if (epoll_ >= 0) epoll_ctl(epoll_, EPOLL_CTL_DEL, l.fd, nullptr);
    close(l.fd);
    l.fd = -1;
    if (!l.unix_path.empty()) unlink(l.unix_path.c_str());
  }

  void Accept(Listener& l, Protocol protocol) {
    for (int i = 0; i < 64; ++i) {
      const int fd =
          accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: stop accepting until the next sweep rather
          // than spin on a listener that stays readable.
          LogError("accept_failed", {{"protocol", ProtocolName(protocol)},
                                     {"error", ErrnoText(errno)}});
          epoll_ctl(epoll_, EPOLL_CTL_DEL, l.fd, nullptr);
          listeners_paused_ = true;
        }
        return;
      }
      if (connections_.size() >= options_.max_connections || draining_) {
        close(fd);
        metrics_->refused->Increment();
        const absl::Time now = absl::Now();
        if (now - last_refused_log_ > absl::Seconds(10)) {
          last_refused_log_ = now;
          LogWarning("connection_refused",
                     {{"protocol", ProtocolName(protocol)},
                      {"open", connections_.size()},
                      {"max_connections", options_.max_connections}});
        }
        continue;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto c = std::make_unique<Connection>();
      c->id = next_id_++;
      c->fd = fd;
      c->protocol = protocol;
      c->last_activity = absl::Now();
      if (protocol == Protocol::kPolicy) {
        c->policy = std::make_unique<PolicyParser>(options_.policy_limits);
      } else {
        c->netstring =
            std::make_unique<NetstringDecoder>(options_.max_netstring);
      }
      c->interest = EPOLLIN | EPOLLRDHUP;
      Watch(fd, c->id, c->interest);
      metrics_->of(protocol).connections->Increment();
      metrics_->of(protocol).open->Increment();
      connections_.emplace(c->id, std::move(c));
    }
  }

  Connection* Find(uint64_t id) {
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : it->second.get();
  }

  void Close(Connection& c) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    metrics_->of(c.protocol).open->Decrement();
    connections_.erase(c.id);  // destroys c
  }

  void ProtocolError(Connection& c, std::string_view kind,
                     const absl::Status& error) {
    if (c.peer.empty()) c.peer = PeerName(c.fd);
    LogWarning("protocol_error", {{"protocol", ProtocolName(c.protocol)},
                                  {"peer", c.peer},
                                  {"kind", kind},
                                  {"error", ToStd(error.message())}});
    metrics_->Count(metrics_->of(c.protocol).errors, kind);
    Close(c);
  }

  void OnEvent(uint64_t id, uint32_t events) {
    Connection* c = Find(id);
    if (c == nullptr) return;
    if (events & (EPOLLHUP | EPOLLERR)) {
      // Reset or gone both ways: no answer can reach the peer.
      Close(*c);
      return;
    }
    if (events & EPOLLOUT) {
      if (!Flush(*c)) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP)) {
      if (c->state != Connection::State::kIdle) {
        SetInterest(*c, c->out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
        return;
      }
      Read(*c);
    }
  }

  // Reads what is there and serves complete requests. May close c.
  void Read(Connection& c) {
    char buf[16384];
    bool eof = false;
    for (int i = 0; i < 4; ++i) {
      const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        if (c.policy) {
          c.policy->Append(std::string_view(buf, static_cast<size_t>(n)));
        } else {
          c.netstring->Append(std::string_view(buf, static_cast<size_t>(n)));
        }
        c.last_activity = absl::Now();
        if (static_cast<size_t>(n) < sizeof(buf)) break;
        continue;
      }
      if (n == 0) {
        eof = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        ProtocolError(c, "read_error", ErrnoStatus("recv", errno));
        return;
      }
      break;
    }
    const uint64_t id = c.id;
    Serve(c);
    if (!eof) return;
    Connection* still = Find(id);
    if (still == nullptr) return;
    const size_t left = still->policy ? still->policy->buffered()
                                      : still->netstring->buffered();
    if (still->state != Connection::State::kIdle) {
      // Answer what was asked; the peer's write side is closed.
      still->close_after_write = true;
      UpdateInterest(*still);
      return;
    }
    if (left > 0) {
      ProtocolError(*still, "truncated",
                    absl::InvalidArgumentError(
                        absl::StrCat("connection closed inside a request (",
                                     left, " bytes pending)")));
      return;
    }
    if (still->out.empty()) {
      Close(*still);
    } else {
      still->close_after_write = true;
      UpdateInterest(*still);
    }
  }

  // Serves buffered requests until one needs to wait. May close c.
  void Serve(Connection& c) {
    while (c.state == Connection::State::kIdle && !c.close_after_write) {
      if (c.policy) {
        PolicyRequest request;
        switch (c.policy->NextRequest(&request)) {
          case PolicyParser::Next::kNeedMore:
            UpdateInterest(c);
            return;
          case PolicyParser::Next::kError:
            ProtocolError(c, PolicyErrorName(c.policy->error_kind()),
                          c.policy->error());
            return;
          case PolicyParser::Next::kRequest:
            if (!HandlePolicy(c, request)) return;
            break;
        }
      } else {
        std::string payload;
        switch (c.netstring->NextRecord(&payload)) {
          case NetstringDecoder::Next::kNeedMore:
            UpdateInterest(c);
            return;
          case NetstringDecoder::Next::kError:
            ProtocolError(c, NetstringErrorName(c.netstring->error_kind()),
                          c.netstring->error());
            return;
          case NetstringDecoder::Next::kRecord:
            if (!HandleSocketmap(c, payload)) return;
            break;
        }
      }
    }
    UpdateInterest(c);
  }

  // Returns false when c was closed.
  bool Reply(Connection& c, std::string_view outcome, std::string_view reply) {
    AdapterMetrics::PerProtocol& m = metrics_->of(c.protocol);
    metrics_->Count(m.outcomes, outcome);
    metrics_->Count(m.requests, ActionClass(c.protocol, reply));
    c.out += FrameReply(c.protocol, reply);
    if (draining_) c.close_after_write = true;
    return Flush(c);
  }

  // Writes pending output; false when c was closed.
  bool Flush(Connection& c) {
    while (!c.out.empty()) {
      const ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      Close(c);  // EPIPE, ECONNRESET: the peer is gone
      return false;
    }
    if (c.out.size() > kMaxPendingOutput) {
      ProtocolError(
          c, "output_overflow",
          absl::ResourceExhaustedError("peer does not read its answers"));
      return false;
    }
    if (c.out.empty() && c.close_after_write) {
      Close(c);
      return false;
    }
    UpdateInterest(c);
    return true;
  }

  bool HandlePolicy(Connection& c, const PolicyRequest& request) {
    return Act(c, PlanPolicyRequest(request, options_));
  }

  bool HandleSocketmap(Connection& c, std::string_view payload) {
    return Act(c, PlanSocketmapRequest(payload, options_));
  }

  // Sends the planned reply or starts the lookup; false when c was closed.
  bool Act(Connection& c, RequestPlan plan) {
    if (plan.kind == RequestPlan::Kind::kReply) {
      return Reply(c, plan.outcome, plan.reply);
    }
    Lookup(c, plan.context, std::move(plan.recipient), plan.batch);
    return true;
  }

  void Lookup(Connection& c, const v1::SmtpContext& context,
              std::string recipient, bool batch) {
    c.state = Connection::State::kWaiting;
    c.request_start = absl::Now();
    UpdateInterest(c);
    metrics_->in_flight->Increment();
    client::CheckOptions check;
    check.batch = batch;
    client_->CheckRecipient(
        context, std::move(recipient), check,
        [mailbox = mailbox_, id = c.id](client::RecipientResult result) {
          Mailbox::Item item{id, std::move(result)};
          if (!t_holds_state) {
            Mailbox* m = mailbox.get();
            StateLock lock(m);
            if (m->owner != nullptr) m->owner->Complete(item);
            return;  // answered, or the adapter is gone
          }
          mailbox->Post(std::move(item));
        });
  }

  void Complete(Mailbox::Item& item) {
    metrics_->in_flight->Decrement();
    Connection* c = Find(item.connection);
    if (c == nullptr || c->state != Connection::State::kWaiting) return;
    const absl::Time now = absl::Now();
    AdapterMetrics::PerProtocol& m = metrics_->of(c->protocol);
    m.latency->Observe(absl::ToDoubleSeconds(now - c->request_start));
    const client::RecipientResult& r = item.result;
    // kInvalid is the request's fault (answered as malformed), not the
    // service's: only the failure-policy answers count as upstream failures.
    if (r.source == client::RecipientResult::Source::kFailOpen ||
        r.source == client::RecipientResult::Source::kTempfail) {
      metrics_->Count(metrics_->upstream_failures,
                      absl::StatusCodeToString(r.error.code()));
      if (r.source == client::RecipientResult::Source::kFailOpen) {
        m.fail_open->Increment();
      }
      if (now - last_failure_log_ > absl::Seconds(10)) {
        last_failure_log_ = now;
        LogWarning("upstream_failure",
                   {{"protocol", ProtocolName(c->protocol)},
                    {"code", absl::StatusCodeToString(r.error.code())},
                    {"error", ToStd(r.error.message())},
                    {"answered_as", client::FailurePolicyName(
                                        client_->options().failure_policy)}});
      }
    }
    LookupAnswer answer =
        AnswerLookup(c->protocol, r, options_.max_tarpit_delay);
    std::string reply = std::move(answer.reply);
    const std::string_view outcome = answer.outcome;
    const absl::Duration delay = answer.delay;
    c->state = Connection::State::kIdle;
    c->last_activity = now;
    if (delay > absl::ZeroDuration()) {
      m.tarpitted->Increment();
      m.tarpit_seconds->Increment(absl::ToDoubleSeconds(delay));
      if (!draining_) {
        c->state = Connection::State::kDelaying;
        c->delayed_reply = std::move(reply);
        c->delayed_outcome = outcome;
        timers_.push_back(Timer{now + delay, c->id});
        std::push_heap(timers_.begin(), timers_.end(), std::greater<Timer>());
        // Possibly answered off the loop: the loop must learn of the new
        // timer (a tarpit is rare; a spurious wake-up costs nothing).
        mailbox_->Wake();
        return;
      }
    }
    const uint64_t id = c->id;
    if (!Reply(*c, outcome, reply)) return;
    if (Connection* still = Find(id)) Serve(*still);
  }

  void FinishDelay(Connection& c) {
    c.state = Connection::State::kIdle;
    const std::string_view outcome = c.delayed_outcome;
    const uint64_t id = c.id;
    std::string reply = std::move(c.delayed_reply);
    if (!Reply(c, outcome, reply)) return;
    if (Connection* still = Find(id)) Serve(*still);
  }

  void RunTimers(absl::Time now) {
    while (!timers_.empty() && (draining_ || timers_.front().at <= now)) {
      std::pop_heap(timers_.begin(), timers_.end(), std::greater<Timer>());
      const uint64_t id = timers_.back().connection;
      timers_.pop_back();
      Connection* c = Find(id);
      if (c != nullptr && c->state == Connection::State::kDelaying) {
        FinishDelay(*c);
      }
    }
  }

  void Sweep(absl::Time now) {
    if (listeners_paused_ && !draining_) {
      listeners_paused_ = false;
      if (policy_.fd >= 0) Watch(policy_.fd, kPolicyListenerId, EPOLLIN);
      if (socketmap_.fd >= 0) {
        Watch(socketmap_.fd, kSocketmapListenerId, EPOLLIN);
      }
    }
    std::vector<uint64_t> idle;
    for (auto& [id, c] : connections_) {
      if (c->state == Connection::State::kIdle &&
          now - c->last_activity > options_.idle_timeout) {
        idle.push_back(id);
      }
    }
    for (uint64_t id : idle) {
      Connection* c = Find(id);
      metrics_->of(c->protocol).idle_closed->Increment();
      Close(*c);
    }
  }

  void BeginDrain(absl::Time now) {
    draining_ = true;
    drain_deadline_ = now + options_.drain_timeout;
    CloseListener(policy_);
    CloseListener(socketmap_);
    std::vector<uint64_t> idle;
    size_t busy = 0;
    for (auto& [id, c] : connections_) {
      if (c->state == Connection::State::kIdle && c->out.empty()) {
        idle.push_back(id);
      } else {
        ++busy;
      }
    }
    LogInfo("postfix_adapter_draining",
            {{"idle_closed", idle.size()},
             {"busy", busy},
             {"drain_timeout", absl::FormatDuration(options_.drain_timeout)}});
    for (uint64_t id : idle) Close(*Find(id));
    for (auto& [id, c] : connections_) {
      if (c->state == Connection::State::kIdle) c->close_after_write = true;
    }
    RunTimers(now);  // parked tarpits are answered now
  }

  // Constant after construction.
  const AdapterOptions options_;
  client::Client* const client_;
  // Owns what metrics_ points into: kept as long as the adapter records.
  const std::shared_ptr<prometheus::Registry> registry_;
  const std::unique_ptr<AdapterMetrics> metrics_;
  const std::shared_ptr<Mailbox> mailbox_;

  // Guarded by mailbox_->state_mu: used by the loop thread between its
  // epoll_waits and by a thread answering a lookup. (epoll_ctl is safe
  // from any thread; an event already returned for a connection that
  // another thread closed meanwhile names an id that is never reused.)
  int epoll_ = -1;
  Listener policy_, socketmap_;
  bool listeners_paused_ = false;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<Timer> timers_;  // min-heap on `at`
  uint64_t next_id_ = kFirstConnectionId;
  bool draining_ = false;
  absl::Time drain_deadline_;
  absl::Time last_refused_log_ = absl::InfinitePast();
  absl::Time last_failure_log_ = absl::InfinitePast();

  std::atomic<bool> stop_requested_{false};
};

absl::StatusOr<std::unique_ptr<Adapter>> Adapter::Create(
    const AdapterOptions& options, client::Client* client,
    std::shared_ptr<prometheus::Registry> registry) {
  absl::Status valid = ValidateAdapterOptions(options);
  if (!valid.ok()) return valid;
  if (client == nullptr || registry == nullptr) {
    return absl::InvalidArgumentError("client and registry are required");
  }
  absl::StatusOr<std::unique_ptr<AdapterMetrics>> metrics =
      AdapterMetrics::Register(*registry);
  if (!metrics.ok()) return metrics.status();
  auto impl = std::make_unique<Impl>(options, client, std::move(registry),
                                     *std::move(metrics));
  absl::Status init = impl->Init();
  if (!init.ok()) return init;
  return std::unique_ptr<Adapter>(new Adapter(std::move(impl)));
}

Adapter::Adapter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Adapter::~Adapter() = default;
int Adapter::policy_port() const { return impl_->policy_port(); }
int Adapter::socketmap_port() const { return impl_->socketmap_port(); }
absl::Status Adapter::Run() { return impl_->Run(); }
void Adapter::Stop() { impl_->Stop(); }

}  // namespace rcptguard::postfix
