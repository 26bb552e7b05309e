#include "clients/postfix/adapter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "common/log.h"
#include "common/strings.h"

namespace rcptguard::postfix {
namespace {

enum class Protocol { kPolicy = 0, kSocketmap = 1 };
constexpr std::array<const char*, 2> kProtocolNames = {"policy", "socketmap"};
const char* Name(Protocol p) { return kProtocolNames[static_cast<int>(p)]; }

// epoll data for the fds that are not connections.
constexpr uint64_t kPolicyListenerId = 1;
constexpr uint64_t kSocketmapListenerId = 2;
constexpr uint64_t kWakeId = 3;
constexpr uint64_t kFirstConnectionId = 16;

constexpr size_t kMaxPendingOutput = 64 * 1024;

std::string ErrnoText(int err) { return std::strerror(err); }

absl::Status ErrnoStatus(std::string_view what, int err) {
  return absl::UnavailableError(
      absl::StrCat(ToAbsl(what), ": ", ErrnoText(err)));
}

// Outcome labels (PolicyAnswer / SocketmapAnswer::outcome and the routes
// that need no lookup). Registered up front so the request path never
// creates a series.
constexpr std::array<const char*, 16> kOutcomes = {
    "valid",        "unknown",         "monitor",       "stale",
    "not_served",   "malformed",       "client_tempfail", "client_reject",
    "fail_open",    "fail_tempfail",   "unspecified",   "not_rcpt",
    "sasl",         "no_recipient",    "bad_request",   "too_long"};
constexpr std::array<const char*, 7> kPolicyActions = {
    "dunno", "reject", "defer", "other", "ok", "notfound", "temp"};
constexpr std::array<const char*, 13> kErrorKinds = {
    "line_too_long",  "too_many_attributes", "request_too_large", "no_equals",
    "empty_name",     "bad_name",            "nul_byte",
    "duplicate_attribute", "empty_request",  "bad_request_type",
    "bad_length",     "leading_zero",        "length_too_long"};
constexpr std::array<const char*, 4> kMoreErrorKinds = {
    "no_comma", "truncated", "output_overflow", "read_error"};

// The action class of a reply, for the requests metric.
std::string_view ActionClass(Protocol p, std::string_view reply) {
  if (p == Protocol::kPolicy) {
    if (reply == "DUNNO") return "dunno";
    if (!reply.empty() && reply[0] == '5') return "reject";
    if (!reply.empty() && reply[0] == '4') return "defer";
    return "other";
  }
  if (reply.rfind("OK", 0) == 0) return "ok";
  if (reply.rfind("NOTFOUND", 0) == 0) return "notfound";
  if (reply.rfind("TEMP", 0) == 0) return "temp";
  return "other";  // PERM
}

// Registered once; the request path only looks series up.
struct Metrics {
  struct PerProtocol {
    absl::flat_hash_map<std::string, prometheus::Counter*> requests;
    absl::flat_hash_map<std::string, prometheus::Counter*> outcomes;
    absl::flat_hash_map<std::string, prometheus::Counter*> errors;
    prometheus::Histogram* latency = nullptr;
    prometheus::Counter* fail_open = nullptr;
    prometheus::Counter* tarpitted = nullptr;
    prometheus::Counter* tarpit_seconds = nullptr;
    prometheus::Counter* connections = nullptr;
    prometheus::Counter* idle_closed = nullptr;
    prometheus::Gauge* open = nullptr;
  };
  std::array<PerProtocol, 2> p;
  absl::flat_hash_map<std::string, prometheus::Counter*> upstream_failures;
  prometheus::Counter* refused = nullptr;
  prometheus::Gauge* in_flight = nullptr;

  PerProtocol& of(Protocol protocol) { return p[static_cast<int>(protocol)]; }

  void Count(absl::flat_hash_map<std::string, prometheus::Counter*>& m,
             std::string_view key) {
    auto it = m.find(ToAbsl(key));
    if (it != m.end()) it->second->Increment();
  }

  // Family::Add allocates and may throw: only here, at start-up.
  static absl::StatusOr<std::unique_ptr<Metrics>> Register(
      prometheus::Registry& registry) {
    auto m = std::make_unique<Metrics>();
    try {
      auto& requests =
          prometheus::BuildCounter()
              .Name("rcptguard_postfix_requests_total")
              .Help("Requests answered, by protocol and the kind of action "
                    "sent (policy: dunno/reject/defer; socketmap: "
                    "ok/notfound/temp/other)")
              .Register(registry);
      auto& outcomes =
          prometheus::BuildCounter()
              .Name("rcptguard_postfix_outcomes_total")
              .Help("Requests answered, by protocol and why")
              .Register(registry);
      auto& errors = prometheus::BuildCounter()
                         .Name("rcptguard_postfix_protocol_errors_total")
                         .Help("Connections closed for a protocol error, by "
                               "protocol and kind")
                         .Register(registry);
      auto& latency =
          prometheus::BuildHistogram()
              .Name("rcptguard_postfix_upstream_latency_seconds")
              .Help("Time from a request needing rcptguard to its answer "
                    "(or the failure policy's), tarpit excluded")
              .Register(registry);
      auto& fail_open = prometheus::BuildCounter()
                            .Name("rcptguard_postfix_fail_open_total")
                            .Help("Requests answered by the fail_open policy "
                                  "because rcptguard did not answer")
                            .Register(registry);
      auto& tarpitted = prometheus::BuildCounter()
                            .Name("rcptguard_postfix_tarpitted_total")
                            .Help("Answers delayed by a TARPIT verdict")
                            .Register(registry);
      auto& tarpit_seconds =
          prometheus::BuildCounter()
              .Name("rcptguard_postfix_tarpit_seconds_total")
              .Help("Seconds of TARPIT delay imposed")
              .Register(registry);
      auto& connections = prometheus::BuildCounter()
                              .Name("rcptguard_postfix_connections_total")
                              .Help("Connections accepted")
                              .Register(registry);
      auto& idle = prometheus::BuildCounter()
                       .Name("rcptguard_postfix_idle_closed_total")
                       .Help("Connections closed after idle_timeout")
                       .Register(registry);
      auto& open = prometheus::BuildGauge()
                       .Name("rcptguard_postfix_connections_open")
                       .Help("Connections open now")
                       .Register(registry);
      auto& failures =
          prometheus::BuildCounter()
              .Name("rcptguard_postfix_upstream_failures_total")
              .Help("Lookups rcptguard did not answer, by gRPC code")
              .Register(registry);
      auto& refused = prometheus::BuildCounter()
                          .Name("rcptguard_postfix_connections_refused_total")
                          .Help("Connections closed at once because "
                                "max_connections were open")
                          .Register(registry);
      auto& in_flight = prometheus::BuildGauge()
                            .Name("rcptguard_postfix_lookups_in_flight")
                            .Help("Lookups waiting for rcptguard")
                            .Register(registry);
      const prometheus::Histogram::BucketBoundaries buckets = {
          0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
          0.05,   0.1,   0.25,  0.5,   1.0,  2.5};
      for (Protocol proto : {Protocol::kPolicy, Protocol::kSocketmap}) {
        const std::string name = Name(proto);
        PerProtocol& pp = m->of(proto);
        for (const char* a : kPolicyActions) {
          pp.requests[a] = &requests.Add({{"protocol", name}, {"action", a}});
        }
        for (const char* o : kOutcomes) {
          pp.outcomes[o] =
              &outcomes.Add({{"protocol", name}, {"outcome", o}});
        }
        for (const char* k : kErrorKinds) {
          pp.errors[k] = &errors.Add({{"protocol", name}, {"kind", k}});
        }
        for (const char* k : kMoreErrorKinds) {
          pp.errors[k] = &errors.Add({{"protocol", name}, {"kind", k}});
        }
        pp.latency = &latency.Add({{"protocol", name}}, buckets);
        pp.fail_open = &fail_open.Add({{"protocol", name}});
        pp.tarpitted = &tarpitted.Add({{"protocol", name}});
        pp.tarpit_seconds = &tarpit_seconds.Add({{"protocol", name}});
        pp.connections = &connections.Add({{"protocol", name}});
        pp.idle_closed = &idle.Add({{"protocol", name}});
        pp.open = &open.Add({{"protocol", name}});
      }
      for (int code = 1; code <= 16; ++code) {
        const std::string label = absl::AsciiStrToLower(absl::StatusCodeToString(
            static_cast<absl::StatusCode>(code)));
        m->upstream_failures[label] = &failures.Add({{"code", label}});
      }
      m->refused = &refused.Add({});
      m->in_flight = &in_flight.Add({});
    } catch (const std::exception& e) {
      return absl::InternalError(
          absl::StrCat("registering metrics: ", e.what()));
    }
    return m;
  }
};

// Answers posted by gRPC threads for the loop. Shared with the callbacks,
// so a late callback after the adapter is gone writes into a live object.
// Thread safety: Post() and Wake() from any thread (Wake() also from a
// signal handler); Take() on the loop thread only.
class Mailbox {
 public:
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

struct Listener {
  int fd = -1;
  int port = 0;
  std::string unix_path;
};

absl::StatusOr<Listener> Listen(const ListenAddress& address, int mode) {
  Listener l;
  if (address.kind == ListenAddress::Kind::kUnix) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (address.path.size() >= sizeof(sun.sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix socket path too long: ", address.path));
    }
    std::memcpy(sun.sun_path, address.path.data(), address.path.size());
    struct stat st;
    if (lstat(address.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrCat(
            address.path, " exists and is not a socket: not replacing it"));
      }
      unlink(address.path.c_str());
    }
    l.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l.fd < 0) return ErrnoStatus("socket", errno);
    if (bind(l.fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
      const int err = errno;
      close(l.fd);
      return ErrnoStatus(absl::StrCat("bind ", address.path), err);
    }
    chmod(address.path.c_str(), static_cast<mode_t>(mode));
    l.unix_path = address.path;
  } else {
    sockaddr_storage ss{};
    socklen_t len;
    int family;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) == 1) {
      family = AF_INET;
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(address.port));
      len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) ==
               1) {
      family = AF_INET6;
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(address.port));
      len = sizeof(sockaddr_in6);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("not an IP address: \"", address.host, "\""));
    }
    l.fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l.fd < 0) return ErrnoStatus("socket", errno);
    const int one = 1;
    setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      const int err = errno;
      close(l.fd);
      return ErrnoStatus(
          absl::StrCat("bind ", address.host, ":", address.port), err);
    }
    sockaddr_storage bound{};
    socklen_t blen = sizeof(bound);
    getsockname(l.fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    l.port = ntohs(family == AF_INET
                       ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  if (listen(l.fd, 1024) != 0) {
    const int err = errno;
    close(l.fd);
    return ErrnoStatus("listen", err);
  }
  return l;
}

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return "unknown";
  }
  char host[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(a->sin6_port));
  }
  return "unix";
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text) {
  ListenAddress a;
  if (text.rfind("unix:", 0) == 0) {
    a.kind = ListenAddress::Kind::kUnix;
    a.path = std::string(text.substr(5));
    if (a.path.empty() || a.path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", ToAbsl(text), "\": unix socket path must be absolute"));
    }
    return a;
  }
  if (text.rfind("inet:", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", ToAbsl(text), "\": expected inet:HOST:PORT or unix:/PATH"));
  }
  std::string_view rest = text.substr(5);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", ToAbsl(text), "\": no port"));
  }
  std::string_view host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", ToAbsl(text), "\": no host"));
  }
  int port;
  if (!absl::SimpleAtoi(ToAbsl(rest.substr(colon + 1)), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", ToAbsl(text), "\": bad port"));
  }
  a.host = std::string(host);
  a.port = port;
  return a;
}

absl::Status ValidateAdapterOptions(const AdapterOptions& o) {
  if (o.policy_listen.empty() && o.socketmap_listen.empty()) {
    return absl::InvalidArgumentError(
        "nothing to serve: set policy_listen and/or socketmap_listen");
  }
  for (const std::string* l : {&o.policy_listen, &o.socketmap_listen}) {
    if (l->empty()) continue;
    absl::StatusOr<ListenAddress> a = ParseListenAddress(*l);
    if (!a.ok()) return a.status();
  }
  if (o.socketmap_name.empty() ||
      o.socketmap_name.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        "socketmap_name: must be non-empty without spaces");
  }
  if (o.policy_limits.max_line < 64 || o.policy_limits.max_line > 1 << 20) {
    return absl::InvalidArgumentError("max_line: must be 64..1048576");
  }
  if (o.policy_limits.max_request_bytes < o.policy_limits.max_line ||
      o.policy_limits.max_request_bytes > 1 << 24) {
    return absl::InvalidArgumentError(
        "max_request_bytes: must be max_line..16777216");
  }
  if (o.policy_limits.max_attributes < 8 ||
      o.policy_limits.max_attributes > 10000) {
    return absl::InvalidArgumentError("max_attributes: must be 8..10000");
  }
  if (o.max_netstring < 64 || o.max_netstring > 1 << 20) {
    return absl::InvalidArgumentError("max_netstring: must be 64..1048576");
  }
  if (o.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections: must be positive");
  }
  if (o.idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_timeout: must be positive");
  }
  if (o.max_tarpit_delay < absl::ZeroDuration() ||
      o.drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "max_tarpit_delay, drain_timeout: must not be negative");
  }
  return absl::OkStatus();
}

class Adapter::Impl {
 public:
  Impl(const AdapterOptions& options, client::Client* client,
       std::unique_ptr<Metrics> metrics)
      : options_(options),
        client_(client),
        metrics_(std::move(metrics)),
        mailbox_(std::make_shared<Mailbox>()) {}

  ~Impl() {
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
             {"failure_policy", client::FailurePolicyName(
                                    client_->options().failure_policy)}});
    std::array<epoll_event, 256> events;
    absl::Time next_sweep = absl::Now() + absl::Seconds(1);
    for (;;) {
      absl::Time wake = next_sweep;
      if (!timers_.empty()) wake = std::min(wake, timers_.front().at);
      if (draining_) wake = std::min(wake, drain_deadline_);
      const absl::Duration wait = wake - absl::Now();
      const int timeout_ms =
          wait <= absl::ZeroDuration()
              ? 0
              : static_cast<int>(std::min<int64_t>(
                    absl::ToInt64Milliseconds(absl::Ceil(
                        wait, absl::Milliseconds(1))),
                    1000));
      const int n = epoll_wait(epoll_, events.data(),
                               static_cast<int>(events.size()), timeout_ms);
      if (n < 0 && errno != EINTR) {
        return ErrnoStatus("epoll_wait", errno);
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
    if (c.state == Connection::State::kIdle && !c.close_after_write) {
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
      const int fd = accept4(l.fd, nullptr, nullptr,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: stop accepting until the next sweep rather
          // than spin on a listener that stays readable.
          LogError("accept_failed", {{"protocol", Name(protocol)},
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
                     {{"protocol", Name(protocol)},
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
        c->netstring = std::make_unique<NetstringDecoder>(options_.max_netstring);
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
    LogWarning("protocol_error", {{"protocol", Name(c.protocol)},
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
                    absl::InvalidArgumentError(absl::StrCat(
                        "connection closed inside a request (", left,
                        " bytes pending)")));
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
    Metrics::PerProtocol& m = metrics_->of(c.protocol);
    metrics_->Count(m.outcomes, outcome);
    metrics_->Count(m.requests, ActionClass(c.protocol, reply));
    if (c.protocol == Protocol::kPolicy) {
      c.out += FormatPolicyReply(reply);
    } else {
      c.out += EncodeNetstring(reply);
    }
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
      ProtocolError(c, "output_overflow",
                    absl::ResourceExhaustedError(
                        "peer does not read its answers"));
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
    PolicyRoute route = RoutePolicyRequest(request, options_.edge_id);
    if (route.kind == PolicyRoute::Kind::kAnswer) {
      return Reply(c, route.reason, route.action);
    }
    if (route.query.recipient.size() > kMaxRecipientBytes) {
      return Reply(c, "too_long", "501 5.1.3 Bad recipient address syntax");
    }
    Lookup(c, route.query.context, std::move(route.query.recipient),
           /*batch=*/false);
    return true;
  }

  bool HandleSocketmap(Connection& c, std::string_view payload) {
    absl::StatusOr<SocketmapRequest> request = ParseSocketmapRequest(payload);
    if (!request.ok()) {
      return Reply(c, "bad_request",
                   absl::StrCat("PERM ", request.status().message()));
    }
    if (request->name != options_.socketmap_name) {
      return Reply(c, "bad_request",
                   absl::StrCat("PERM unknown map name \"",
                                CleanText(request->name, 64), "\""));
    }
    if (request->key.size() > kMaxRecipientBytes) {
      return Reply(c, "too_long", "NOTFOUND ");
    }
    // Socketmap carries no client context: harvest detection counts these
    // under the server's "unparsable" key and never penalizes them.
    v1::SmtpContext context;
    context.set_edge_id(options_.edge_id.empty() ? std::string("postfix")
                                                 : options_.edge_id);
    Lookup(c, context, std::move(request->key), /*batch=*/true);
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
          mailbox->Post(Mailbox::Item{id, std::move(result)});
        });
  }

  void Complete(Mailbox::Item& item) {
    metrics_->in_flight->Decrement();
    Connection* c = Find(item.connection);
    if (c == nullptr || c->state != Connection::State::kWaiting) return;
    const absl::Time now = absl::Now();
    Metrics::PerProtocol& m = metrics_->of(c->protocol);
    m.latency->Observe(absl::ToDoubleSeconds(now - c->request_start));
    const client::RecipientResult& r = item.result;
    // kInvalid is the request's fault (answered as malformed), not the
    // service's: only the failure-policy answers count as upstream failures.
    if (r.source == client::RecipientResult::Source::kFailOpen ||
        r.source == client::RecipientResult::Source::kTempfail) {
      metrics_->Count(metrics_->upstream_failures,
                      absl::AsciiStrToLower(
                          absl::StatusCodeToString(r.error.code())));
      if (r.source == client::RecipientResult::Source::kFailOpen) {
        m.fail_open->Increment();
      }
      if (now - last_failure_log_ > absl::Seconds(10)) {
        last_failure_log_ = now;
        LogWarning("upstream_failure",
                   {{"protocol", Name(c->protocol)},
                    {"code", absl::StatusCodeToString(r.error.code())},
                    {"error", ToStd(r.error.message())},
                    {"answered_as", client::FailurePolicyName(
                                        client_->options().failure_policy)}});
      }
    }
    std::string reply;
    std::string_view outcome;
    absl::Duration delay;
    if (c->protocol == Protocol::kPolicy) {
      PolicyAnswer a = AnswerPolicy(r, options_.max_tarpit_delay);
      reply = std::move(a.action);
      outcome = a.outcome;
      delay = a.delay;
    } else {
      SocketmapAnswer a = AnswerSocketmap(r, options_.max_tarpit_delay);
      reply = std::move(a.reply);
      outcome = a.outcome;
      delay = a.delay;
    }
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
            {{"idle_closed", idle.size()}, {"busy", busy},
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
  const std::unique_ptr<Metrics> metrics_;
  const std::shared_ptr<Mailbox> mailbox_;

  // Used by the loop thread only.
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
  absl::StatusOr<std::unique_ptr<Metrics>> metrics =
      Metrics::Register(*registry);
  if (!metrics.ok()) return metrics.status();
  auto impl = std::make_unique<Impl>(options, client, *std::move(metrics));
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
