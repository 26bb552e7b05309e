// A private Postfix instance for tests, and a small SMTP client to talk to
// it.
//
// PostfixInstance writes its own main.cf and master.cf into a temporary
// config_directory, with its own queue_directory and data_directory, runs
// smtpd on a free 127.0.0.1 port and relays every message to a local
// smtp-sink (started by the harness on another free port, dumping each
// message into a folder) so nothing leaves the machine. It is started with
// `postfix -c DIR start` and stopped with `postfix -c DIR stop`, then by the
// master's PID if that does not end it; never by process name.
//
// Needs root and Debian's `postfix` package (smtp-sink comes with it).
//
//   PostfixInstance postfix;
//   ASSERT_TRUE(postfix.Start({{"smtpd_recipient_restrictions",
//                               "reject_unauth_destination"}}).ok());
//   SmtpClient smtp;
//   ASSERT_TRUE(smtp.Connect(postfix.smtp_port()).ok());
//   smtp.Command("EHLO client.example.net");
//
// Thread safety: not thread-safe; one owner each.
#ifndef RCPTGUARD_TESTS_TESTUTIL_POSTFIX_H_
#define RCPTGUARD_TESTS_TESTUTIL_POSTFIX_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::testing {

struct SmtpReply {
  int code = 0;
  // Every line's text after "NNN-"/"NNN ", joined by '\n'.
  std::string text;
  std::string ToString() const;
};

// Blocking SMTP client for tests (CRLF lines, multi-line replies).
class SmtpClient {
 public:
  SmtpClient() = default;
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;
  ~SmtpClient();

  // Connects to 127.0.0.1:port and reads the greeting (must be 220).
  absl::Status Connect(int port, absl::Duration timeout = absl::Seconds(30));
  // Sends `line` + CRLF and reads the reply.
  absl::StatusOr<SmtpReply> Command(std::string_view line);
  // DATA, then `message` (CRLF lines, dot-stuffed by the caller) and the
  // final ".": the reply to the end of data.
  absl::StatusOr<SmtpReply> Data(std::string_view message);
  void Close();

 private:
  absl::StatusOr<SmtpReply> ReadReply();
  int fd_ = -1;
  std::string buffer_;
};

class PostfixInstance {
 public:
  PostfixInstance() = default;
  PostfixInstance(const PostfixInstance&) = delete;
  PostfixInstance& operator=(const PostfixInstance&) = delete;
  ~PostfixInstance();

  // True when Postfix is installed and we are root; tests skip otherwise.
  static bool Available();

  // Writes the config (the base settings, then `main_cf` on top), starts
  // smtp-sink and Postfix, and waits until smtpd accepts connections.
  absl::Status Start(
      const std::vector<std::pair<std::string, std::string>>& main_cf = {});
  // Changes main.cf settings (postconf -e), reloads Postfix, and waits
  // until the daemons of the old configuration have exited.
  absl::Status Reconfigure(
      const std::vector<std::pair<std::string, std::string>>& main_cf);
  // `postfix stop`, then the master's PID; stops smtp-sink too.
  absl::Status Stop();

  int smtp_port() const { return smtp_port_; }
  int sink_port() const { return sink_port_; }
  const std::string& dir() const { return dir_; }
  std::string config_dir() const { return dir_ + "/config"; }
  // Postfix's own log (maillog_file).
  std::string maillog() const;

  // Messages smtp-sink has received, as dumped (headers include
  // X-Rcpt-Args lines with the envelope recipients).
  // A message's file appears before smtp-sink has written all of it.
  std::vector<std::string> Deliveries() const;
  // Waits until a message that contains `text` (e.g. "X-Rcpt-Args:
  // <bob@example.com>") has arrived at smtp-sink. Waiting for a number of
  // files instead raced with smtp-sink still writing the last one.
  bool WaitForDelivery(const std::string& text, absl::Duration timeout);

 private:
  absl::Status Postfix(const std::vector<std::string>& args,
                       std::string* output = nullptr);
  int MasterPid() const;

  std::string dir_;
  int smtp_port_ = 0;
  int sink_port_ = 0;
  bool started_ = false;
  Subprocess sink_;
};

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_TESTUTIL_POSTFIX_H_
