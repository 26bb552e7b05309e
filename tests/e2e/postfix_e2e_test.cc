// End to end with a real Postfix: SMTP client → Postfix smtpd →
// (check_policy_service | relay_recipient_maps = socketmap:) →
// rcptguard-postfix → rcptguardd on the sample directory, with delivery to
// a local smtp-sink. Everything listens on 127.0.0.1; every process is
// stopped by PID (Postfix by `postfix stop` and its master's PID).
//
// Every SMTP session comes from 127.0.0.1, so harvest counts accumulate
// over a test: each test starts its own rcptguardd.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/adapter_process.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/http.h"
#include "tests/testutil/postfix.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::AdapterProcess;
using ::rcptguard::testing::BinaryDir;
using ::rcptguard::testing::HttpGet;
using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::Netstring;
using ::rcptguard::testing::PolicyRequest;
using ::rcptguard::testing::PostfixInstance;
using ::rcptguard::testing::RawConnection;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SmtpClient;
using ::rcptguard::testing::SmtpReply;
using ::rcptguard::testing::SourceDir;
using ::rcptguard::testing::Subprocess;
using ::rcptguard::testing::WaitForFile;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ServerConfig() {
  // Small harvest rules so a burst of a few unknown recipients escalates:
  // tarpit (1 s) from 3 unknown, 451 from 5, 550 5.7.1 from 7.
  return absl::StrCat(
      R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" subaddress_delimiters: "+" aliases: "mail.example.com" }
domains { name: "example.org" }
directory { ldif_files: ")",
      SourceDir(),
      R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
shutdown { grace_ms: 0 drain_timeout_ms: 1000 }
harvest {
  rules { name: "tarpit" scopes: "v4/32" window: "10m" min_unknown: 3
          action: HARVEST_ACTION_TARPIT base_delay: "1s" factor: 1 max_delay: "1s" }
  rules { name: "slow-down" scopes: "v4/32" window: "10m" min_unknown: 5
          action: HARVEST_ACTION_TEMPFAIL }
  rules { name: "block" scopes: "v4/32" window: "10m" min_unknown: 7
          action: HARVEST_ACTION_REJECT penalty_duration: "1h" }
}
)");
}

// rcptguardd on ServerConfig(), serving, and an adapter in front of it.
void StartServerAndAdapter(ServerProcess& server, AdapterProcess& adapter) {
  ASSERT_NO_FATAL_FAILURE(server.Start(ServerConfig()));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  ASSERT_NO_FATAL_FAILURE(adapter.Start(server.target()));
}

// Postfix with the policy service after reject_unauth_destination, and
// Postfix's own default action matching the adapter's failure policy (as
// docs/postfix.md says).
std::vector<std::pair<std::string, std::string>> PolicyMode(
    const AdapterProcess& adapter, bool fail_open = true) {
  return {
      {"smtpd_recipient_restrictions",
       "reject_unauth_destination, check_policy_service " +
           adapter.policy_service()},
      {"relay_recipient_maps", ""},
      {"smtpd_policy_service_timeout", "10s"},
      {"smtpd_policy_service_default_action",
       fail_open ? "DUNNO" : "451 4.3.5 Recipient verification unavailable"}};
}

std::vector<std::pair<std::string, std::string>> SocketmapMode(
    const AdapterProcess& adapter) {
  return {{"smtpd_recipient_restrictions", "reject_unauth_destination"},
          {"relay_recipient_maps", adapter.socketmap()}};
}

// One SMTP session from 127.0.0.1 up to MAIL FROM. Postfix's master spawns
// smtpd on demand; connecting is tried up to three times (what the test
// checks starts after the greeting). A greeting that never came at all was
// postlogd deadlocked on its own log socket (PostfixInstance::Start writes
// each main.cf parameter once to avoid it).
void Open(SmtpClient& smtp, const PostfixInstance& postfix) {
  absl::Status connected;
  for (int attempt = 0; attempt < 3; ++attempt) {
    connected = smtp.Connect(postfix.smtp_port(), absl::Seconds(15));
    if (connected.ok()) break;
  }
  ASSERT_TRUE(connected.ok()) << connected << "\n" << postfix.maillog();
  absl::StatusOr<SmtpReply> r = smtp.Command("EHLO client.example.net");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->code, 250);
  r = smtp.Command("MAIL FROM:<sender@example.net>");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->code, 250) << r->ToString();
}

struct Timed {
  SmtpReply reply;
  absl::Duration took;
};

Timed Rcpt(SmtpClient& smtp, const std::string& address) {
  const absl::Time start = absl::Now();
  absl::StatusOr<SmtpReply> r = smtp.Command("RCPT TO:<" + address + ">");
  Timed t{r.ok() ? *r : SmtpReply{0, std::string(r.status().message())},
          absl::Now() - start};
  return t;
}

// A message to valid recipients must arrive at smtp-sink.
void SendAndExpectDelivery(PostfixInstance& postfix,
                           const std::vector<std::string>& recipients) {
  SmtpClient smtp;
  ASSERT_NO_FATAL_FAILURE(Open(smtp, postfix));
  for (const std::string& r : recipients) {
    Timed t = Rcpt(smtp, r);
    ASSERT_EQ(t.reply.code, 250) << r << ": " << t.reply.ToString();
  }
  absl::StatusOr<SmtpReply> data =
      smtp.Data("Subject: rcptguard e2e\r\n\r\nhello\r\n");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->code, 250) << data->ToString();
  smtp.Command("QUIT").IgnoreError();
  EXPECT_TRUE(postfix.WaitForDelivery(
      "X-Rcpt-Args: <" + recipients.front() + ">", absl::Seconds(20)))
      << postfix.maillog();
}

class PostfixE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostfixInstance::Available()) {
      GTEST_SKIP() << "postfix not installed or not root";
    }
  }
};

TEST_F(PostfixE2eTest, PolicyDelegationValidatesAndTarpitsAHarvester) {
  ServerProcess server;
  AdapterProcess adapter;
  ASSERT_NO_FATAL_FAILURE(StartServerAndAdapter(server, adapter));
  PostfixInstance postfix;
  absl::Status started = postfix.Start(PolicyMode(adapter));
  ASSERT_TRUE(started.ok()) << started;

  {
    SmtpClient smtp;
    ASSERT_NO_FATAL_FAILURE(Open(smtp, postfix));
    EXPECT_EQ(Rcpt(smtp, "alice@example.com").reply.code, 250);
    Timed unknown = Rcpt(smtp, "nobody@example.com");  // unknown #1
    EXPECT_EQ(unknown.reply.code, 550);
    EXPECT_THAT(unknown.reply.text, HasSubstr("5.1.1"));
    EXPECT_THAT(unknown.reply.text, HasSubstr("User unknown"));
    Timed relay = Rcpt(smtp, "someone@other.example.net");
    EXPECT_EQ(relay.reply.code, 554);
    EXPECT_THAT(relay.reply.text, HasSubstr("5.7.1"));
    EXPECT_EQ(Rcpt(smtp, "Bob@Mail.Example.com").reply.code, 250);
    EXPECT_EQ(Rcpt(smtp, "info+sales@example.com").reply.code, 250);
    smtp.Command("QUIT").IgnoreError();
  }
  ASSERT_NO_FATAL_FAILURE(SendAndExpectDelivery(
      postfix, {"alice@example.com", "bob@mail.example.com"}));

  // The harvest burst: unknown #2 is answered at once, #3 and #4 after the
  // 1 s tarpit, #5 and #6 get 451 4.7.1, #7 on 550 5.7.1 (penalty box),
  // and then even a valid recipient gets 550 5.7.1.
  SmtpClient smtp;
  ASSERT_NO_FATAL_FAILURE(Open(smtp, postfix));
  Timed t2 = Rcpt(smtp, "guess2@example.com");
  EXPECT_EQ(t2.reply.code, 550) << t2.reply.ToString();
  EXPECT_LT(t2.took, absl::Milliseconds(900));
  for (const char* guess : {"guess3@example.com", "guess4@example.com"}) {
    Timed t = Rcpt(smtp, guess);
    EXPECT_EQ(t.reply.code, 550) << t.reply.ToString();
    EXPECT_THAT(t.reply.text, HasSubstr("5.1.1"));
    EXPECT_GE(t.took, absl::Milliseconds(950)) << guess;
    EXPECT_LT(t.took, absl::Seconds(5)) << guess;
  }
  for (const char* guess : {"guess5@example.com", "guess6@example.com"}) {
    Timed t = Rcpt(smtp, guess);
    EXPECT_EQ(t.reply.code, 451) << t.reply.ToString();
    EXPECT_THAT(t.reply.text, HasSubstr("4.7.1"));
  }
  Timed t7 = Rcpt(smtp, "guess7@example.com");
  EXPECT_EQ(t7.reply.code, 550) << t7.reply.ToString();
  EXPECT_THAT(t7.reply.text, HasSubstr("5.7.1"));
  Timed blocked = Rcpt(smtp, "alice@example.com");
  EXPECT_EQ(blocked.reply.code, 550) << blocked.reply.ToString();
  EXPECT_THAT(blocked.reply.text, HasSubstr("5.7.1"));
  smtp.Command("QUIT").IgnoreError();

  const std::string metrics = HttpGet(adapter.metrics_port(), "/metrics");
  EXPECT_THAT(
      metrics,
      HasSubstr("rcptguard_postfix_tarpitted_total{protocol=\"policy\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("rcptguard_postfix_outcomes_total{outcome="
                                 "\"client_reject\",protocol=\"policy\"} 2"));
  EXPECT_THAT(postfix.maillog(), HasSubstr("status=sent"));

  // SIGTERM drains and exits 0.
  std::optional<int> exit_status = adapter.process().Stop(absl::Seconds(10));
  ASSERT_TRUE(exit_status.has_value());
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << adapter.log();
  EXPECT_THAT(adapter.log(), HasSubstr("postfix_adapter_drained"));
}

// Issue 19: with smtputf8_enable = no, Postfix passes a raw 0xFF octet of
// MAIL FROM to the policy service as sender=. That used to make the request
// unparsable for the server, and the adapter answered DUNNO (fail-open):
// anyone could switch recipient checking off for their own transaction.
// Now the recipients are checked as usual.
TEST_F(PostfixE2eTest, InvalidUtf8InMailFromDoesNotSwitchCheckingOff) {
  ServerProcess server;
  AdapterProcess adapter;
  ASSERT_NO_FATAL_FAILURE(StartServerAndAdapter(server, adapter));
  PostfixInstance postfix;
  std::vector<std::pair<std::string, std::string>> settings =
      PolicyMode(adapter);
  settings.push_back({"smtputf8_enable", "no"});
  absl::Status started = postfix.Start(settings);
  ASSERT_TRUE(started.ok()) << started;

  SmtpClient smtp;
  ASSERT_TRUE(smtp.Connect(postfix.smtp_port()).ok());
  absl::StatusOr<SmtpReply> r = smtp.Command("EHLO client\xff.example.net");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->code, 250) << r->ToString();
  r = smtp.Command("MAIL FROM:<x\xff@b.example>");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->code, 250) << r->ToString() << postfix.maillog();
  Timed unknown = Rcpt(smtp, "nobody@example.com");
  EXPECT_EQ(unknown.reply.code, 550) << unknown.reply.ToString();
  EXPECT_THAT(unknown.reply.text, HasSubstr("5.1.1"));
  EXPECT_EQ(Rcpt(smtp, "alice@example.com").reply.code, 250);
  smtp.Command("QUIT").IgnoreError();

  const std::string metrics = HttpGet(adapter.metrics_port(), "/metrics");
  EXPECT_THAT(
      metrics,
      HasSubstr("rcptguard_postfix_fail_open_total{protocol=\"policy\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("rcptguard_postfix_outcomes_total{outcome="
                                 "\"unknown\",protocol=\"policy\"} 1"));
  EXPECT_THAT(adapter.log(), Not(HasSubstr("upstream_failure")));
}

TEST_F(PostfixE2eTest, SocketmapRelayRecipientMaps) {
  ServerProcess server;
  AdapterProcess adapter;
  ASSERT_NO_FATAL_FAILURE(StartServerAndAdapter(server, adapter));
  PostfixInstance postfix;
  absl::Status started = postfix.Start(SocketmapMode(adapter));
  ASSERT_TRUE(started.ok()) << started;

  SmtpClient smtp;
  ASSERT_NO_FATAL_FAILURE(Open(smtp, postfix));
  EXPECT_EQ(Rcpt(smtp, "alice@example.com").reply.code, 250);
  EXPECT_EQ(Rcpt(smtp, "CONF-ROOM-1@example.com").reply.code, 250);
  EXPECT_EQ(Rcpt(smtp, "bob+news@example.com").reply.code, 250);
  for (const char* unknown :
       {"nobody@example.com", "carol.former@example.com"}) {
    Timed t = Rcpt(smtp, unknown);
    EXPECT_EQ(t.reply.code, 550) << unknown << ": " << t.reply.ToString();
    EXPECT_THAT(t.reply.text, HasSubstr("5.1.1"));
    EXPECT_THAT(t.reply.text, HasSubstr("relay recipient table"));
  }
  Timed relay = Rcpt(smtp, "someone@other.example.net");
  EXPECT_EQ(relay.reply.code, 554);
  EXPECT_THAT(relay.reply.text, HasSubstr("5.7.1"));
  smtp.Command("QUIT").IgnoreError();
  ASSERT_NO_FATAL_FAILURE(SendAndExpectDelivery(
      postfix, {"alice@example.com", "info@example.com"}));
  const std::string metrics = HttpGet(adapter.metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("rcptguard_postfix_outcomes_total{outcome="
                                 "\"unknown\",protocol=\"socketmap\"} 2"));
}

TEST_F(PostfixE2eTest, ServerStoppedFailOpenPassesTempfailDefers) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(ServerConfig()));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  AdapterProcess open_adapter, tempfail_adapter;
  ASSERT_NO_FATAL_FAILURE(open_adapter.Start(server.target(), "fail_open"));
  ASSERT_NO_FATAL_FAILURE(tempfail_adapter.Start(server.target(), "tempfail"));
  PostfixInstance postfix;
  absl::Status started = postfix.Start(PolicyMode(open_adapter));
  ASSERT_TRUE(started.ok()) << started;
  {
    // With the server up, unknown recipients are rejected...
    SmtpClient smtp;
    ASSERT_NO_FATAL_FAILURE(Open(smtp, postfix));
    EXPECT_EQ(Rcpt(smtp, "nobody@example.com").reply.code, 550);
  }
  // The test's main.cf (its restrictions replace the defaults) names each
  // parameter once: a duplicate makes every daemon warn at start, and
  // those warnings could deadlock postlogd (PostfixInstance::Start).
  EXPECT_THAT(postfix.maillog(), HasSubstr("connect from"));
  EXPECT_THAT(postfix.maillog(), Not(HasSubstr("overriding earlier entry")));
  // ...and once it is stopped, fail_open lets mail through as Postfix would
  // without rcptguard.
  ASSERT_TRUE(server.process().Stop(absl::Seconds(10)).has_value());
  {
    SmtpClient smtp;
    ASSERT_NO_FATAL_FAILURE(Open(smtp, postfix));
    Timed t = Rcpt(smtp, "nobody@example.com");
    EXPECT_EQ(t.reply.code, 250) << t.reply.ToString();
    EXPECT_LT(t.took, absl::Seconds(2));
  }
  ASSERT_NO_FATAL_FAILURE(
      SendAndExpectDelivery(postfix, {"alice@example.com"}));
  EXPECT_THAT(
      HttpGet(open_adapter.metrics_port(), "/metrics"),
      HasSubstr("rcptguard_postfix_fail_open_total{protocol=\"policy\"}"));

  ASSERT_TRUE(postfix.Reconfigure(SocketmapMode(open_adapter)).ok());
  ASSERT_NO_FATAL_FAILURE(SendAndExpectDelivery(postfix, {"bob@example.com"}));

  // tempfail: policy answers 451 4.3.0, socketmap TEMP (Postfix 451 4.3.0).
  ASSERT_TRUE(
      postfix.Reconfigure(PolicyMode(tempfail_adapter, /*fail_open=*/false))
          .ok());
  {
    SmtpClient smtp;
    ASSERT_NO_FATAL_FAILURE(Open(smtp, postfix));
    Timed t = Rcpt(smtp, "alice@example.com");
    EXPECT_EQ(t.reply.code, 451) << t.reply.ToString();
    EXPECT_THAT(t.reply.text, HasSubstr("4.3.0"));
  }
  ASSERT_TRUE(postfix.Reconfigure(SocketmapMode(tempfail_adapter)).ok());
  {
    SmtpClient smtp;
    ASSERT_NO_FATAL_FAILURE(Open(smtp, postfix));
    Timed t = Rcpt(smtp, "alice@example.com");
    EXPECT_EQ(t.reply.code, 451) << t.reply.ToString();
    EXPECT_THAT(t.reply.text, HasSubstr("4.3.0"));
  }
  EXPECT_THAT(tempfail_adapter.log(), HasSubstr("upstream_failure"));
}

TEST(PostfixAdapterTest, GarbageClosesOneConnectionTarpitHoldsNoOther) {
  ServerProcess server;
  AdapterProcess adapter;
  ASSERT_NO_FATAL_FAILURE(StartServerAndAdapter(server, adapter));
  const int policy_port = adapter.policy_port();
  const int socketmap_port = adapter.socketmap_port();

  {
    RawConnection garbage(policy_port);
    ASSERT_TRUE(garbage.connected());
    garbage.Send("GET / HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(garbage.ClosedByPeer());
  }
  {
    RawConnection oversize(socketmap_port);
    ASSERT_TRUE(oversize.connected());
    oversize.Send("999999:rcpt ");
    EXPECT_TRUE(oversize.ClosedByPeer());
  }
  {
    RawConnection longline(policy_port);
    ASSERT_TRUE(longline.connected());
    longline.Send("request=smtpd_access_policy\nhelo_name=" +
                  std::string(5000, 'x'));
    EXPECT_TRUE(longline.ClosedByPeer());
  }
  EXPECT_THAT(adapter.log(), HasSubstr("kind=no_equals"));
  EXPECT_THAT(adapter.log(), HasSubstr("kind=length_too_long"));
  EXPECT_THAT(adapter.log(), HasSubstr("kind=line_too_long"));

  // A harvester gets tarpitted (1 s) while another client on another
  // connection is answered at once.
  RawConnection harvester(policy_port), other(policy_port);
  ASSERT_TRUE(harvester.connected() && other.connected());
  for (int i = 0; i < 2; ++i) {
    harvester.Send(
        PolicyRequest("203.0.113.50", absl::StrCat("g", i, "@example.com")));
    EXPECT_EQ(harvester.ReadUntil("\n\n"), "action=550 5.1.1 User unknown\n\n");
  }
  const absl::Time start = absl::Now();
  harvester.Send(PolicyRequest("203.0.113.50", "g3@example.com"));
  for (int i = 0; i < 5; ++i) {
    other.Send(PolicyRequest("198.51.100.60", "alice@example.com"));
    EXPECT_EQ(other.ReadUntil("\n\n"), "action=DUNNO\n\n");
  }
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_EQ(harvester.ReadUntil("\n\n"), "action=550 5.1.1 User unknown\n\n");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(950));

  // Socketmap on a live connection, including a PERM for a bad body.
  RawConnection sm(socketmap_port);
  ASSERT_TRUE(sm.connected());
  auto ns = [](const std::string& p) {
    return absl::StrCat(p.size(), ":", p, ",");
  };
  sm.Send(ns("rcpt alice@example.com"));
  EXPECT_EQ(sm.ReadUntil(","), ns("OK valid"));
  sm.Send(ns("other alice@example.com"));
  EXPECT_EQ(sm.ReadUntil(","), ns("PERM unknown map name \"other\""));
  sm.Send(ns("rcpt nobody@example.com"));
  EXPECT_EQ(sm.ReadUntil(","), ns("NOTFOUND "));

  const std::string metrics = HttpGet(adapter.metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("rcptguard_postfix_protocol_errors_total{"
                                 "kind=\"no_equals\",protocol=\"policy\"} 1"));
  EXPECT_THAT(
      metrics,
      HasSubstr(
          "rcptguard_postfix_connections_open{protocol=\"socketmap\"} 1"));
}

}  // namespace
}  // namespace rcptguard
