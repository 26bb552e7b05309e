// A private redis-server for tests: its own folder, a unix socket (and,
// when asked, a free TCP port on 127.0.0.1), no persistence, stopped by PID.
//
//   RG_ASSERT_OK_AND_ASSIGN(auto redis, RedisServer::Start(dir));
//   redis->address();                  // "unix:/tmp/.../redis.sock"
//   redis->Cli({"DBSIZE"});            // redis-cli's answer
//   redis->Pause(); redis->Resume();   // SIGSTOP / SIGCONT
//   redis->Kill(); redis->Restart();   // SIGKILL; start again, empty
//
// Thread safety: not thread-safe; one owner.
#ifndef RCPTGUARD_TESTS_TESTUTIL_REDIS_H_
#define RCPTGUARD_TESTS_TESTUTIL_REDIS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::testing {

class RedisServer {
 public:
  // An ACL user redis-cli logs in as (e.g. when the default user is off).
  struct CliUser {
    std::string name;
    std::string password;
  };

  // Starts redis-server in `dir` (which must exist). With tcp, it also
  // listens on a free port of 127.0.0.1. Extra "--name value" arguments
  // (e.g. {"--requirepass", "x"} or {"--aclfile", path}) are passed on;
  // with `cli_user`, Cli() (and the start-up PING) log in as that user.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      const std::string& dir, bool tcp = false,
      std::vector<std::string> extra = {}, CliUser cli_user = {});
  ~RedisServer();

  // "unix:<dir>/redis.sock", or "127.0.0.1:PORT" with tcp.
  std::string address() const;
  const std::string& socket() const { return socket_; }
  int port() const { return port_; }

  // Runs redis-cli against it; returns its output without the trailing
  // newline.
  absl::StatusOr<std::string> Cli(const std::vector<std::string>& args);

  void Pause();   // SIGSTOP
  void Resume();  // SIGCONT
  void Kill();    // SIGKILL, waits
  // Starts it again on the same socket and port: empty.
  absl::Status Restart();

 private:
  RedisServer() = default;
  absl::Status Launch();

  std::string dir_;
  std::string socket_;
  bool tcp_ = false;
  int port_ = 0;
  std::vector<std::string> extra_;
  CliUser cli_user_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_TESTUTIL_REDIS_H_
