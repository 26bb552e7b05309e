// End to end with a real Haraka: SMTP client → Haraka (installed from the
// npm registry by scripts/haraka_env.sh) → haraka-plugin-rcptguard (packed
// from clients/haraka with npm pack) → rcptguardd on the sample directory.
// Everything listens on 127.0.0.1; every process is stopped by PID.
//
// Every SMTP session comes from 127.0.0.1, so harvest counts accumulate
// over a test: each test starts its own rcptguardd.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/e2e/haraka_process.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/postfix.h"
#include "tests/testutil/slapd.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::HarakaProcess;
using ::rcptguard::testing::MakeSelfSignedCertificate;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::ScopedTempDir;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SmtpClient;
using ::rcptguard::testing::SmtpReply;
using ::rcptguard::testing::SourceDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// example.com enforced (alias mail.example.com), example.org in MONITOR
// mode; harvest rules small enough that a burst of a few unknown recipients
// escalates: tarpit (1 s) from 3 unknown, 451 from 5, 550 5.7.1 from 7.
std::string ServerConfig(const std::string& extra = "") {
  return absl::StrCat(R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" subaddress_delimiters: "+" aliases: "mail.example.com" }
domains { name: "example.org" mode: DOMAIN_MODE_MONITOR }
directory { ldif_files: ")",
                      SourceDir(),
                      R"(/deploy/examples/sample.ldif" preset: "ad" )", extra,
                      R"( }
shutdown { grace_ms: 0 drain_timeout_ms: 1000 }
harvest {
  rules { name: "tarpit" scopes: "v4/32" window: "10m" min_unknown: 3
          action: HARVEST_ACTION_TARPIT base_delay: "1s" factor: 1 max_delay: "1s" }
  rules { name: "slow-down" scopes: "v4/32" window: "10m" min_unknown: 5
          action: HARVEST_ACTION_TEMPFAIL reply_text: "Too many unknown recipients, slow down" }
  rules { name: "block" scopes: "v4/32" window: "10m" min_unknown: 7
          action: HARVEST_ACTION_REJECT penalty_duration: "1h" reply_text: "Harvesting refused" }
}
)");
}

std::vector<std::pair<std::string, std::string>> PluginSettings(
    const ServerProcess& server, const std::string& failure_policy) {
  return {{"servers", server.target()},
          {"timeout_ms", "500"},
          {"retry_ms", "2000"},
          {"failure_policy", failure_policy},
          {"stats_interval_s", "0"}};
}

struct Timed {
  SmtpReply reply;
  absl::Duration took;
};

class Session {
 public:
  explicit Session(const HarakaProcess& haraka) {
    absl::Status connected = smtp_.Connect(haraka.smtp_port());
    EXPECT_TRUE(connected.ok()) << connected << haraka.log();
    absl::StatusOr<SmtpReply> r = smtp_.Command("EHLO client.example.net");
    EXPECT_TRUE(r.ok() && r->code == 250) << haraka.log();
    r = smtp_.Command("MAIL FROM:<sender@example.net>");
    EXPECT_TRUE(r.ok() && r->code == 250) << haraka.log();
  }
  ~Session() { smtp_.Command("QUIT").IgnoreError(); }

  Timed Rcpt(const std::string& address) {
    const absl::Time start = absl::Now();
    absl::StatusOr<SmtpReply> r = smtp_.Command("RCPT TO:<" + address + ">");
    return Timed{r.ok() ? *r : SmtpReply{0, std::string(r.status().message())},
                 absl::Now() - start};
  }

 private:
  SmtpClient smtp_;
};

class HarakaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = HarakaProcess::InstallDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
  }

  void StartBoth(const std::string& server_extra = "",
                 const std::string& failure_policy = "fail_open") {
    ASSERT_NO_FATAL_FAILURE(server_.Start(ServerConfig(server_extra)));
    ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
    absl::Status s =
        haraka_.Start({"rcptguard"}, PluginSettings(server_, failure_policy));
    ASSERT_TRUE(s.ok()) << s;
  }

  ServerProcess server_;
  HarakaProcess haraka_;
};

TEST_F(HarakaE2eTest, RepliesAreTheServersReplies) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Session smtp(haraka_);
  Timed valid = smtp.Rcpt("alice@example.com");
  EXPECT_EQ(valid.reply.code, 250) << valid.reply.ToString();
  Timed alias = smtp.Rcpt("bob+news@mail.example.com");
  EXPECT_EQ(alias.reply.code, 250) << alias.reply.ToString();
  Timed unknown = smtp.Rcpt("nobody@example.com");
  EXPECT_EQ(unknown.reply.code, 550);
  EXPECT_THAT(unknown.reply.text, StartsWith("5.1.1 "));
  Timed relay = smtp.Rcpt("someone@not-ours.example.net");
  EXPECT_EQ(relay.reply.code, 554);
  EXPECT_THAT(relay.reply.text, StartsWith("5.7.1 "));
  // MONITOR: unknown, but the reply accepts.
  Timed monitor = smtp.Rcpt("nobody@example.org");
  EXPECT_EQ(monitor.reply.code, 250) << monitor.reply.ToString();
}

TEST_F(HarakaE2eTest, StaleDirectoryDefersUnknownRecipients) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(R"(stale_after: "1s")"));
  absl::SleepFor(absl::Milliseconds(1500));
  Session smtp(haraka_);
  Timed unknown = smtp.Rcpt("nobody@example.com");
  EXPECT_EQ(unknown.reply.code, 450) << unknown.reply.ToString();
  EXPECT_THAT(unknown.reply.text, StartsWith("4.1.1 "));
  EXPECT_EQ(smtp.Rcpt("alice@example.com").reply.code, 250);
}

TEST_F(HarakaE2eTest, HarvestBurstEscalatesTarpitTempfailReject) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Session smtp(haraka_);
  EXPECT_EQ(smtp.Rcpt("alice@example.com").reply.code, 250);
  for (const char* guess : {"guess1@example.com", "guess2@example.com"}) {
    Timed t = smtp.Rcpt(guess);
    EXPECT_EQ(t.reply.code, 550) << t.reply.ToString();
    EXPECT_LT(t.took, absl::Milliseconds(900));
  }
  // The third unknown fires the tarpit: 1 s, then the directory's answer.
  Timed t3 = smtp.Rcpt("guess3@example.com");
  EXPECT_EQ(t3.reply.code, 550) << t3.reply.ToString();
  EXPECT_GE(t3.took, absl::Milliseconds(900));
  smtp.Rcpt("guess4@example.com");
  // The fifth: 451 4.7.1 with the rule's text.
  Timed t5 = smtp.Rcpt("guess5@example.com");
  EXPECT_EQ(t5.reply.code, 451) << t5.reply.ToString();
  EXPECT_THAT(t5.reply.text, HasSubstr("slow down"));
  smtp.Rcpt("guess6@example.com");
  Timed t7 = smtp.Rcpt("guess7@example.com");
  EXPECT_EQ(t7.reply.code, 550) << t7.reply.ToString();
  EXPECT_THAT(t7.reply.text, StartsWith("5.7.1 Harvesting refused"));
  // Blocked: a valid recipient gets the block's reply too.
  Timed blocked = smtp.Rcpt("alice@example.com");
  EXPECT_EQ(blocked.reply.code, 550) << blocked.reply.ToString();
  EXPECT_THAT(blocked.reply.text, StartsWith("5.7.1 "));
}

TEST_F(HarakaE2eTest, FrozenOrStoppedServerFailsOpenForServedDomainsOnly) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  {
    Session smtp(haraka_);
    ASSERT_EQ(smtp.Rcpt("alice@example.com").reply.code, 250);
  }
  // The plugin learnt the served domains at start (GetServedDomains).
  ASSERT_TRUE(server_.process().Freeze());
  {
    Session smtp(haraka_);
    Timed open = smtp.Rcpt("nobody@example.com");  // unknown, but no answer
    EXPECT_EQ(open.reply.code, 250) << open.reply.ToString();
    EXPECT_LT(open.took, absl::Seconds(3));
    Timed relay = smtp.Rcpt("someone@not-ours.example.net");
    EXPECT_EQ(relay.reply.code, 451) << relay.reply.ToString();
    EXPECT_THAT(relay.reply.text, StartsWith("4.3.0 "));
    Timed alias = smtp.Rcpt("x@mail.example.com");
    EXPECT_EQ(alias.reply.code, 250) << alias.reply.ToString();
  }
  server_.process().Signal(SIGCONT);
  server_.process().Stop(absl::Seconds(10));
  {
    Session smtp(haraka_);
    Timed open = smtp.Rcpt("alice@example.com");
    EXPECT_EQ(open.reply.code, 250) << open.reply.ToString();
    EXPECT_LT(open.took, absl::Seconds(2));
    Timed relay = smtp.Rcpt("someone@not-ours.example.net");
    EXPECT_EQ(relay.reply.code, 451) << relay.reply.ToString();
  }
}

TEST_F(HarakaE2eTest, TempfailPolicyDefersEverythingWhenTheServerIsGone) {
  ASSERT_NO_FATAL_FAILURE(StartBoth("", "tempfail"));
  {
    Session smtp(haraka_);
    ASSERT_EQ(smtp.Rcpt("alice@example.com").reply.code, 250);
  }
  server_.process().Stop(absl::Seconds(10));
  Session smtp(haraka_);
  Timed served = smtp.Rcpt("alice@example.com");
  EXPECT_EQ(served.reply.code, 451) << served.reply.ToString();
  Timed relay = smtp.Rcpt("someone@not-ours.example.net");
  EXPECT_EQ(relay.reply.code, 451) << relay.reply.ToString();
}

// The plugin over mutual TLS: the server trusts the edge's (self-signed)
// certificate, whose identity "localhost" may validate; the plugin trusts
// the server's.
TEST_F(HarakaE2eTest, MutualTls) {
  ScopedTempDir pki("haraka-pki");
  absl::StatusOr<testing::TlsFiles> server_cert =
      MakeSelfSignedCertificate(pki.path(), "server");
  ASSERT_TRUE(server_cert.ok()) << server_cert.status();
  absl::StatusOr<testing::TlsFiles> edge_cert =
      MakeSelfSignedCertificate(pki.path(), "edge");
  ASSERT_TRUE(edge_cert.ok()) << edge_cert.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(server_cert->certificate_file);
  ssl.pem_cert_chain = ReadFile(edge_cert->certificate_file);
  ssl.pem_private_key = ReadFile(edge_cert->key_file);
  server_.SetChannelCredentials(grpc::SslCredentials(ssl), "localhost");
  ASSERT_NO_FATAL_FAILURE(server_.Start(ServerConfig(absl::StrCat(
      R"(} tls { cert_file: ")", server_cert->certificate_file,
      R"(" key_file: ")", server_cert->key_file, R"(" client_ca_file: ")",
      edge_cert->certificate_file, R"(" } access { validate: "localhost" )"))));
  ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
  std::vector<std::pair<std::string, std::string>> settings =
      PluginSettings(server_, "fail_open");
  absl::Status s = haraka_.Start(
      {"rcptguard"}, settings,
      {{"rcptguard.ini", absl::StrCat("[main]\nservers=", server_.target(),
                                      "\ntimeout_ms=2000\nstats_interval_s=0\n"
                                      "[tls]\nenabled=true\nca=",
                                      server_cert->certificate_file,
                                      "\ncert=", edge_cert->certificate_file,
                                      "\nkey=", edge_cert->key_file, "\n")}});
  ASSERT_TRUE(s.ok()) << s;
  Session smtp(haraka_);
  Timed valid = smtp.Rcpt("alice@example.com");
  EXPECT_EQ(valid.reply.code, 250) << valid.reply.ToString() << haraka_.log();
  Timed unknown = smtp.Rcpt("nobody@example.com");
  EXPECT_EQ(unknown.reply.code, 550) << unknown.reply.ToString();
  EXPECT_THAT(server_.log(), HasSubstr("mutual"));
}

}  // namespace
}  // namespace rcptguard
