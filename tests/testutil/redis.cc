#include "tests/testutil/redis.h"

#include <signal.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testutil/slapd.h"

namespace rcptguard::testing {

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    const std::string& dir, bool tcp, std::vector<std::string> extra,
    CliUser cli_user) {
  std::unique_ptr<RedisServer> r(new RedisServer());
  r->dir_ = dir;
  r->socket_ = dir + "/redis.sock";
  r->tcp_ = tcp;
  r->extra_ = std::move(extra);
  r->cli_user_ = std::move(cli_user);
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (tcp) {
      absl::StatusOr<int> port = PickFreeLoopbackPort();
      if (!port.ok()) return port.status();
      r->port_ = *port;
    }
    absl::Status s = r->Launch();
    if (s.ok()) return r;
    if (!tcp || attempt == 4) return s;
  }
  return absl::InternalError("unreachable");
}

RedisServer::~RedisServer() {
  if (process_ != nullptr) {
    Resume();
    process_->Stop(absl::Seconds(5));
  }
}

std::string RedisServer::address() const {
  return tcp_ ? absl::StrCat("127.0.0.1:", port_) : "unix:" + socket_;
}

absl::Status RedisServer::Launch() {
  unlink(socket_.c_str());
  std::vector<std::string> argv = {"/usr/bin/redis-server",
                                   "--port",
                                   absl::StrCat(tcp_ ? port_ : 0),
                                   "--bind",
                                   "127.0.0.1",
                                   "--unixsocket",
                                   socket_,
                                   "--unixsocketperm",
                                   "700",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_,
                                   "--daemonize",
                                   "no",
                                   "--logfile",
                                   dir_ + "/redis.log"};
  for (const std::string& e : extra_) argv.push_back(e);
  process_ = std::make_unique<Subprocess>();
  if (absl::Status s = process_->Start(argv); !s.ok()) return s;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (!process_->running()) {
      return absl::UnavailableError(
          absl::StrCat("redis-server exited: ", ReadFile(dir_ + "/redis.log")));
    }
    absl::StatusOr<std::string> pong = Cli({"PING"});
    if (pong.ok() && *pong == "PONG") return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("redis-server did not answer PING");
}

absl::StatusOr<std::string> RedisServer::Cli(
    const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "-s", socket_};
  if (!cli_user_.name.empty()) {
    argv.insert(argv.end(), {"--no-auth-warning", "--user", cli_user_.name,
                             "--pass", cli_user_.password});
  }
  for (size_t i = 0; i < extra_.size(); ++i) {
    if (extra_[i] == "--requirepass" && i + 1 < extra_.size()) {
      argv.push_back("--no-auth-warning");
      argv.push_back("-a");
      argv.push_back(extra_[i + 1]);
    }
  }
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  absl::StatusOr<int> rc = RunCommand(argv, &out, absl::Seconds(10));
  if (!rc.ok()) return rc.status();
  if (*rc != 0) {
    return absl::UnavailableError(absl::StrCat("redis-cli: ", out));
  }
  absl::StripTrailingAsciiWhitespace(&out);
  return out;
}

void RedisServer::Pause() {
  if (process_ != nullptr) process_->Freeze();
}
void RedisServer::Resume() {
  if (process_ != nullptr) process_->Signal(SIGCONT);
}
void RedisServer::Kill() {
  if (process_ == nullptr) return;
  process_->Signal(SIGCONT);
  process_->Signal(SIGKILL);
  process_->Wait(absl::Seconds(10));
  process_.reset();
}

absl::Status RedisServer::Restart() {
  Kill();
  return Launch();
}

}  // namespace rcptguard::testing
