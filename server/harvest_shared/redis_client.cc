#include "server/harvest_shared/redis_client.h"

#include <poll.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/strings.h"
#include "hiredis/async.h"
#include "hiredis/hiredis.h"

namespace rcptguard::harvest_shared {

RedisClient::~RedisClient() { Close(); }

absl::Status RedisClient::Connect(std::string_view address) {
  Close();
  error_.clear();
  redisAsyncContext* ac = nullptr;
  if (address.substr(0, 5) == "unix:") {
    ac = redisAsyncConnectUnix(std::string(address.substr(5)).c_str());
  } else {
    const size_t colon = address.rfind(':');
    int port = 0;
    if (colon == std::string_view::npos ||
        !absl::SimpleAtoi(ToAbsl(address.substr(colon + 1)), &port) ||
        port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis address \"", ToAbsl(address),
                       "\": not host:port or unix:/path"));
    }
    std::string host(address.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    ac = redisAsyncConnect(host.c_str(), port);
  }
  if (ac == nullptr) return absl::ResourceExhaustedError("hiredis: no memory");
  if (ac->err) {
    error_ = ac->errstr;
    redisAsyncFree(ac);
    return absl::UnavailableError(absl::StrCat("redis connect: ", error_));
  }
  ac_ = ac;
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = &AddRead;
  ac->ev.delRead = &DelRead;
  ac->ev.addWrite = &AddWrite;
  ac->ev.delWrite = &DelWrite;
  ac->ev.cleanup = &Cleanup;
  redisAsyncSetDisconnectCallback(ac, &OnDisconnect);
  // The non-blocking connect completes when the socket turns writable.
  want_write_ = true;
  return absl::OkStatus();
}

bool RedisClient::Command(const std::vector<std::string>& argv,
                          Callback callback) {
  if (ac_ == nullptr) return false;
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* cb = new Callback(std::move(callback));
  if (redisAsyncCommandArgv(ac_, &OnReply, cb, static_cast<int>(args.size()),
                            args.data(), lens.data()) != REDIS_OK) {
    delete cb;
    return false;
  }
  ++pending_;
  return true;
}

bool RedisClient::Poll(absl::Duration timeout, int wake_fd) {
  pollfd fds[2];
  int n = 0;
  int redis_index = -1;
  if (ac_ != nullptr && (want_read_ || want_write_)) {
    fds[n].fd = ac_->c.fd;
    fds[n].events = static_cast<short>((want_read_ ? POLLIN : 0) |
                                       (want_write_ ? POLLOUT : 0));
    fds[n].revents = 0;
    redis_index = n++;
  }
  int wake_index = -1;
  if (wake_fd >= 0) {
    fds[n].fd = wake_fd;
    fds[n].events = POLLIN;
    fds[n].revents = 0;
    wake_index = n++;
  }
  const int ms = static_cast<int>(
      std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout)));
  const int ready = poll(fds, n, ms);
  if (ready <= 0) return false;
  if (redis_index >= 0 && ac_ != nullptr) {
    const short ev = fds[redis_index].revents;
    if ((ev & (POLLIN | POLLHUP | POLLERR)) != 0) redisAsyncHandleRead(ac_);
    if (ac_ != nullptr && (ev & (POLLOUT | POLLERR)) != 0) {
      redisAsyncHandleWrite(ac_);
    }
  }
  return wake_index >= 0 && (fds[wake_index].revents & POLLIN) != 0;
}

void RedisClient::Close() {
  if (ac_ == nullptr) return;
  redisAsyncContext* ac = ac_;
  // redisAsyncFree answers pending callbacks with nullptr and may call
  // OnDisconnect, which clears ac_.
  redisAsyncFree(ac);
  ac_ = nullptr;
  want_read_ = want_write_ = false;
  pending_ = 0;
}

void RedisClient::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<RedisClient*>(ac->data);
  auto* cb = static_cast<Callback*>(privdata);
  if (self != nullptr && self->pending_ > 0) --self->pending_;
  if (self != nullptr && reply != nullptr) self->last_reply_ = absl::Now();
  (*cb)(static_cast<const redisReply*>(reply));
  delete cb;
}

void RedisClient::OnDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (self == nullptr) return;
  if (status != REDIS_OK && ac->errstr != nullptr && ac->errstr[0] != '\0') {
    self->error_ = ac->errstr;  // more precise than Cleanup's guess
  } else if (self->error_.empty()) {
    self->error_ = "closed";
  }
  // hiredis frees the context after this returns.
  self->ac_ = nullptr;
  self->want_read_ = self->want_write_ = false;
  self->pending_ = 0;
}

void RedisClient::AddRead(void* self) {
  static_cast<RedisClient*>(self)->want_read_ = true;
}
void RedisClient::DelRead(void* self) {
  static_cast<RedisClient*>(self)->want_read_ = false;
}
void RedisClient::AddWrite(void* self) {
  static_cast<RedisClient*>(self)->want_write_ = true;
}
void RedisClient::DelWrite(void* self) {
  static_cast<RedisClient*>(self)->want_write_ = false;
}
void RedisClient::Cleanup(void* self) {
  // hiredis calls this before it frees the context, whatever the path: also
  // when a connection fails before it was up, where OnDisconnect is not
  // called. After it, ac_ must not be touched.
  auto* c = static_cast<RedisClient*>(self);
  if (c->ac_ != nullptr && c->error_.empty()) {
    c->error_ = c->ac_->err != 0 && c->ac_->errstr != nullptr &&
                        c->ac_->errstr[0] != '\0'
                    ? c->ac_->errstr
                    : "connection lost";
  }
  c->ac_ = nullptr;
  c->want_read_ = c->want_write_ = false;
  c->pending_ = 0;
}

}  // namespace rcptguard::harvest_shared
