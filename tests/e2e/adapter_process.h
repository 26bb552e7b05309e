// rcptguard-postfix started for a test (ports picked by the kernel, read
// from its --port_file), and a raw TCP client for speaking the policy and
// socketmap protocols to it directly. Everything on 127.0.0.1; the adapter
// is stopped by PID.
//
// Thread safety: not thread-safe; one owner each.
#ifndef RCPTGUARD_TESTS_E2E_ADAPTER_PROCESS_H_
#define RCPTGUARD_TESTS_E2E_ADAPTER_PROCESS_H_

#include <string>
#include <vector>

#include "tests/testutil/subprocess.h"

namespace rcptguard::testing {

class AdapterProcess {
 public:
  AdapterProcess() = default;
  AdapterProcess(const AdapterProcess&) = delete;
  AdapterProcess& operator=(const AdapterProcess&) = delete;
  // SIGKILL if still running; removes its temporary folder.
  ~AdapterProcess();

  // Starts the adapter against `server_target` with both protocols and
  // metrics on free ports, a 300 ms deadline and a 2 s drain, plus
  // `extra_args` (e.g. TLS flags). Use with ASSERT_NO_FATAL_FAILURE.
  void Start(const std::string& server_target,
             const std::string& failure_policy = "fail_open",
             const std::string& edge_id = "e2e",
             const std::vector<std::string>& extra_args = {});

  int policy_port() const { return policy_port_; }
  int socketmap_port() const { return socketmap_port_; }
  int metrics_port() const { return metrics_port_; }
  // For main.cf: "inet:127.0.0.1:P" and "socketmap:inet:127.0.0.1:P:rcpt".
  std::string policy_service() const;
  std::string socketmap() const;
  std::string log() const { return ReadFile(log_); }
  Subprocess& process() { return process_; }

 private:
  std::string dir_, log_;
  int policy_port_ = 0, socketmap_port_ = 0, metrics_port_ = 0;
  Subprocess process_;
};

// A TCP connection to 127.0.0.1:port speaking whatever the test sends.
class RawConnection {
 public:
  explicit RawConnection(int port, int timeout_seconds = 10);
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection();

  bool connected() const { return connected_; }
  bool Send(const std::string& bytes);
  // Reads until `terminator` arrives; "" on EOF or timeout.
  std::string ReadUntil(const std::string& terminator);
  // True when the peer closed the connection (EOF) within the timeout,
  // having sent nothing more.
  bool ClosedByPeer();
  // True when the peer closed the connection within the timeout, whatever
  // it sent before (e.g. an HTTP/2 server's SETTINGS frame).
  bool DrainedToClose();

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// `LEN:payload,`.
std::string Netstring(const std::string& payload);
// One RCPT-state policy delegation request, ended by its empty line.
std::string PolicyRequest(const std::string& ip, const std::string& rcpt);

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_E2E_ADAPTER_PROCESS_H_
