#include "tests/e2e/adapter_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace rcptguard::testing {

AdapterProcess::~AdapterProcess() {
  process_.Signal(SIGKILL);
  process_.Wait(absl::Seconds(10));
  RemoveTestDir(dir_);
}

void AdapterProcess::Start(const std::string& server_target,
                           const std::string& failure_policy,
                           const std::string& edge_id,
                           const std::vector<std::string>& extra_args) {
  dir_ = MakeTempDir("rg-adapter");
  ASSERT_FALSE(dir_.empty());
  const std::string port_file = dir_ + "/ports";
  log_ = dir_ + "/adapter.log";
  std::vector<std::string> argv = {
      BinaryDir() + "/clients/postfix/rcptguard-postfix",
      "--server=" + server_target,
      "--policy_listen=inet:127.0.0.1:0",
      "--socketmap_listen=inet:127.0.0.1:0",
      "--metrics_listen=127.0.0.1:0",
      "--failure_policy=" + failure_policy,
      "--deadline=300ms",
      "--edge_id=" + edge_id,
      "--drain_timeout=2s",
      "--port_file=" + port_file};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ASSERT_TRUE(process_.Start(argv, log_, log_).ok());
  ASSERT_TRUE(WaitForFile(port_file, absl::Seconds(20))) << log();
  for (absl::string_view line :
       absl::StrSplit(ReadFile(port_file), '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(kv.second, &port)) << line;
    if (kv.first == "policy") policy_port_ = port;
    if (kv.first == "socketmap") socketmap_port_ = port;
    if (kv.first == "metrics") metrics_port_ = port;
  }
  ASSERT_GT(policy_port_, 0);
  ASSERT_GT(socketmap_port_, 0);
}

std::string AdapterProcess::policy_service() const {
  return absl::StrCat("inet:127.0.0.1:", policy_port_);
}

std::string AdapterProcess::socketmap() const {
  return absl::StrCat("socketmap:inet:127.0.0.1:", socketmap_port_, ":rcpt");
}

RawConnection::RawConnection(int port, int timeout_seconds) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{timeout_seconds, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) close(fd_);
}

bool RawConnection::Send(const std::string& bytes) {
  return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(bytes.size());
}

std::string RawConnection::ReadUntil(const std::string& terminator) {
  std::string out;
  char c;
  while (!absl::EndsWith(out, terminator)) {
    if (recv(fd_, &c, 1, 0) != 1) return "";
    out.push_back(c);
  }
  return out;
}

bool RawConnection::ClosedByPeer() {
  char c;
  return recv(fd_, &c, 1, 0) == 0;
}

bool RawConnection::DrainedToClose() {
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n == 0) return true;
    if (n < 0) return false;  // timeout or error
  }
}

std::string Netstring(const std::string& payload) {
  return absl::StrCat(payload.size(), ":", payload, ",");
}

std::string PolicyRequest(const std::string& ip, const std::string& rcpt) {
  return absl::StrCat(
      "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=", ip,
      "\nhelo_name=x.example.net\nsender=s@example.net\nrecipient=", rcpt,
      "\ninstance=1.2.3\n\n");
}

}  // namespace rcptguard::testing
