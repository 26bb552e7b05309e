// The three binaries as an operator meets them (issue 17): --help and
// --version, per-command usage and flags of `rcptguard`, check's exit codes
// and JSON, --check_config naming missing files, the adapter's config file
// errors with FILE:LINE, its socket mode and metrics, and syslog priority
// prefixes when stderr is the journal.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/program.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/e2e/adapter_process.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/http.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::BinaryDir;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::RunCommand;
using ::rcptguard::testing::ScopedTempDir;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::rcptguard::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Daemon() { return BinaryDir() + "/server/rcptguardd"; }
std::string Cli() { return BinaryDir() + "/clients/rcptguard"; }
std::string Adapter() {
  return BinaryDir() + "/clients/postfix/rcptguard-postfix";
}

// Runs argv; returns the exit code (-1 if it could not run), output in
// *output.
int Exec(const std::vector<std::string>& argv, std::string* output) {
  absl::StatusOr<int> status = RunCommand(argv, output);
  if (!status.ok()) return -1;
  return testing::ExitCode(*status);
}

// Parses `text` as JSON (protobuf's parser: strict JSON, UTF-8 checked).
bool ParsesAsJson(const std::string& text, google::protobuf::Struct* out) {
  return google::protobuf::util::JsonStringToMessage(text, out).ok();
}

TEST(OperatorCliTest, HelpListsTheFlagsAndExitsZero) {
  std::string out;
  EXPECT_EQ(Exec({Daemon(), "--help"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("--config="));
  EXPECT_THAT(out, HasSubstr("--check_config="));
  EXPECT_THAT(out, Not(HasSubstr("No flags matched")));

  EXPECT_EQ(Exec({Cli(), "--help"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("snapshot build"));
  EXPECT_THAT(out, HasSubstr("--server="));

  EXPECT_EQ(Exec({Adapter(), "--help"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("--policy_listen="));
  EXPECT_THAT(out, HasSubstr("--check_config="));
  EXPECT_THAT(out, HasSubstr("--unix_socket_mode=0660"));
}

TEST(OperatorCliTest, VersionIsTheProjectVersion) {
  for (const std::string& binary : {Daemon(), Cli(), Adapter()}) {
    std::string out;
    EXPECT_EQ(Exec({binary, "--version"}, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr(std::string(ProjectVersion())));
    EXPECT_THAT(out, HasSubstr("build)"));
    EXPECT_THAT(out, Not(HasSubstr("NDEBUG")));
  }
}

TEST(OperatorCliTest, EveryCommandHasItsOwnHelp) {
  const std::vector<std::vector<std::string>> commands = {
      {"check"},
      {"status"},
      {"health"},
      {"offenders"},
      {"forget"},
      {"reload"},
      {"snapshot", "keygen"},
      {"snapshot", "build"},
      {"snapshot", "verify"},
      {"snapshot", "inspect"}};
  for (const auto& words : commands) {
    std::vector<std::string> argv = {Cli()};
    argv.insert(argv.end(), words.begin(), words.end());
    argv.push_back("--help");
    std::string out;
    EXPECT_EQ(Exec(argv, &out), 0) << out;
    EXPECT_THAT(
        out, StartsWith("usage: rcptguard " + absl::StrJoin(words, " ") + " "));
  }
  std::string out;
  ASSERT_EQ(Exec({Cli(), "snapshot", "build", "--help"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("--from_ldif="));
  EXPECT_THAT(out, Not(HasSubstr("--client_ip")));
  // `snapshot` alone lists its subcommands, as a usage error.
  EXPECT_EQ(Exec({Cli(), "snapshot"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("snapshot inspect"));
}

TEST(OperatorCliTest, FlagsOfAnotherCommandAreRefused) {
  std::string out;
  EXPECT_EQ(Exec({Cli(), "health", "--from_ldif=x"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--from_ldif does not apply"));
  EXPECT_EQ(Exec({Cli(), "health", "--force"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--force does not apply"));
  EXPECT_EQ(Exec({Cli(), "snapshot", "inspect", "--server", "x", "f"}, &out),
            2);
  EXPECT_THAT(out, HasSubstr("--server does not apply"));
  // Dashed spellings are the same flags.
  EXPECT_EQ(Exec({Cli(), "status", "--client-ip=192.0.2.1"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--client_ip does not apply"));
}

// The sample directory, plus `extra` fields and `more_ldif` (a second
// ldif_files entry) when given.
std::string SampleConfig(const std::string& extra = "",
                         const std::string& more_ldif = "") {
  return absl::StrCat(
      R"(
listen_address: "127.0.0.1:0"
insecure_plaintext: true
domains { name: "example.com" }
directory { ldif_files: ")",
      SourceDir(), R"(/deploy/examples/sample.ldif" preset: "ad" )",
      more_ldif.empty() ? "" : absl::StrCat("ldif_files: \"", more_ldif, "\""),
      "}\n", extra);
}

TEST(OperatorCliTest, CheckExitsOneForUnknownAndPrintsValidJson) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(SampleConfig()));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  const std::string target = absl::StrCat("--server=127.0.0.1:", server.port());
  std::string out;
  EXPECT_EQ(Exec({Cli(), "check", "alice@example.com", target}, &out), 0)
      << out;
  EXPECT_EQ(
      Exec({Cli(), "check", "alice@example.com", "nobody@example.com", target},
           &out),
      1)
      << out;
  EXPECT_EQ(Exec({Cli(), "check", "someone@elsewhere.net", target}, &out), 1)
      << out;

  // Invalid UTF-8 from the command line still gives valid JSON, the
  // address echoed per verdict, and numbers as numbers.
  EXPECT_EQ(Exec({Cli(), "check", "alice@example.com", "b\xff\"ad@example.com",
                  "--json", target},
                 &out),
            1)
      << out;
  google::protobuf::Struct json;
  ASSERT_TRUE(ParsesAsJson(out, &json)) << out;
  const auto& verdicts = json.fields().at("verdicts").list_value();
  ASSERT_EQ(verdicts.values_size(), 2);
  const auto& first = verdicts.values(0).struct_value().fields();
  EXPECT_EQ(first.at("recipient").string_value(), "alice@example.com");
  EXPECT_EQ(first.at("status").string_value(), "RECIPIENT_STATUS_VALID");
  EXPECT_EQ(first.at("reply").struct_value().fields().at("code").number_value(),
            250);
  EXPECT_EQ(
      verdicts.values(1).struct_value().fields().at("recipient").string_value(),
      "b\xc3\xbf\"ad@example.com");  // the octet as U+00FF

  EXPECT_EQ(Exec({Cli(), "status", "--json", target}, &out), 0) << out;
  ASSERT_TRUE(ParsesAsJson(out, &json)) << out;
  EXPECT_TRUE(json.fields().at("total_addresses").has_number_value()) << out;
}

TEST(OperatorCliTest, SnapshotInspectJsonHasNumbers) {
  ScopedTempDir dir("rg-inspect");
  const std::string key = dir.path() + "/key";
  const std::string snap = dir.path() + "/dir.rgs";
  std::string out;
  ASSERT_EQ(Exec({Cli(), "snapshot", "keygen", "--out=" + key}, &out), 0)
      << out;
  ASSERT_EQ(Exec({Cli(), "snapshot", "build",
                  "--from_ldif=" + SourceDir() + "/deploy/examples/sample.ldif",
                  "--preset=ad", "--domains=example.com", "--key=" + key,
                  "--out=" + snap, "--source=t\xfe"},
                 &out),
            0)
      << out;
  ASSERT_EQ(Exec({Cli(), "snapshot", "inspect", snap, "--json"}, &out), 0)
      << out;
  google::protobuf::Struct json;
  ASSERT_TRUE(ParsesAsJson(out, &json)) << out;
  EXPECT_TRUE(json.fields().at("address_count").has_number_value());
  EXPECT_TRUE(json.fields().at("file_size").has_number_value());
  EXPECT_EQ(json.fields().at("source").string_value(), "t\xc3\xbe");
}

TEST(OperatorCliTest, CheckConfigNamesMissingFiles) {
  ScopedTempDir dir("rg-checkcfg");
  const std::string config = dir.path() + "/c.textproto";
  std::string out;
  ASSERT_TRUE(WriteFile(config, SampleConfig()).ok());
  EXPECT_EQ(Exec({Daemon(), "--config=" + config, "--check_config"}, &out), 0)
      << out;

  const struct {
    std::string extra;
    std::string more_ldif;
    std::string field;
  } cases[] = {
      {"fingerprint_key_file: \"missing.key\"", "", "fingerprint_key_file"},
      {"", "nope.ldif", "directory.ldif_files[1]"},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(WriteFile(config, SampleConfig(c.extra, c.more_ldif)).ok());
    EXPECT_EQ(Exec({Daemon(), "--config=" + config, "--check_config"}, &out), 2)
        << out;
    EXPECT_THAT(out, HasSubstr(c.field));
    EXPECT_THAT(out, HasSubstr(dir.path()));
    EXPECT_THAT(out, HasSubstr("No such file"));
  }
  // TLS files: a folder where the key should be.
  ASSERT_TRUE(WriteFile(dir.path() + "/cert.pem", "x").ok());
  ASSERT_EQ(::mkdir((dir.path() + "/key.pem").c_str(), 0700), 0);
  ASSERT_TRUE(
      WriteFile(config,
                absl::StrCat(R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" }
directory { ldif_files: ")",
                             SourceDir(),
                             R"(/deploy/examples/sample.ldif" preset: "ad" }
tls { cert_file: "cert.pem" key_file: "key.pem" client_ca_file: "cert.pem" }
)"))
          .ok());
  EXPECT_EQ(Exec({Daemon(), "--config=" + config, "--check_config"}, &out), 2)
      << out;
  EXPECT_THAT(out, HasSubstr("tls.key_file " + dir.path() + "/key.pem"));
}

TEST(OperatorCliTest, ErrorsCarrySyslogPriorityUnderTheJournal) {
  ScopedTempDir dir("rg-journal");
  const std::string log = dir.path() + "/stderr";
  std::string out;
  // stderr is a file whose device:inode is JOURNAL_STREAM, as systemd sets
  // it for a unit whose output goes to the journal.
  const std::string script = absl::StrCat(
      "exec 2>'", log, "'; JOURNAL_STREAM=$(stat -c %d:%i '", log, "') exec '",
      Daemon(), "' --config='", dir.path(), "/missing'");
  EXPECT_EQ(Exec({"/bin/sh", "-c", script}, &out), 2) << out;
  EXPECT_THAT(ReadFile(log), StartsWith("<3>rcptguardd: ")) << ReadFile(log);
  // Another stream (a redirect) gets no prefix.
  const std::string other =
      absl::StrCat("exec 2>'", log, "'; JOURNAL_STREAM=1:2 exec '", Daemon(),
                   "' --config='", dir.path(), "/missing'");
  EXPECT_EQ(Exec({"/bin/sh", "-c", other}, &out), 2) << out;
  EXPECT_THAT(ReadFile(log), StartsWith("rcptguardd: ")) << ReadFile(log);
}

TEST(OperatorCliTest, AdapterConfigErrorsNameFileAndLine) {
  ScopedTempDir dir("rg-adapter-cfg");
  const std::string config = dir.path() + "/postfix.conf";
  std::string out;
  ASSERT_TRUE(WriteFile(config,
                        "# rcptguard-postfix\n"
                        "server = 127.0.0.1:50051\n"
                        "\n"
                        "max_line = 10\n")
                  .ok());
  EXPECT_EQ(Exec({Adapter(), "--config=" + config, "--check_config"}, &out), 2);
  EXPECT_THAT(out, HasSubstr(config + ":4: max_line: must be"));
  // The command line wins, and is named as such.
  EXPECT_EQ(Exec({Adapter(), "--config=" + config, "--check_config",
                  "--max_line=100"},
                 &out),
            0)
      << out;
  EXPECT_EQ(
      Exec({Adapter(), "--config=" + config, "--check_config", "--max_line=1"},
           &out),
      2);
  EXPECT_THAT(out, HasSubstr("--max_line: must be"));

  ASSERT_TRUE(WriteFile(config,
                        "failure_policy = tempfail\n"
                        "unix_socket_mode = 0998\n")
                  .ok());
  EXPECT_EQ(Exec({Adapter(), "--config=" + config, "--check_config"}, &out), 2);
  EXPECT_THAT(out, HasSubstr(config + ":2: unix_socket_mode"));

  ASSERT_TRUE(
      WriteFile(config, "tls = true\ntls_cert = /nonexistent.pem\n").ok());
  EXPECT_EQ(Exec({Adapter(), "--config=" + config, "--check_config"}, &out), 2);
  EXPECT_THAT(out, HasSubstr(config + ":2: tls_cert"));
  EXPECT_THAT(out, HasSubstr("/nonexistent.pem"));
}

TEST(OperatorCliTest, AdapterSocketModeAndMetrics) {
  ScopedTempDir dir("rg-adapter-run");
  const std::string socket = dir.path() + "/policy.sock";
  const std::string ports = dir.path() + "/ports";
  testing::Subprocess adapter;
  // Nothing listens on port 1: lookups fail open with code UNAVAILABLE.
  ASSERT_TRUE(adapter
                  .Start({Adapter(), "--server=127.0.0.1:1",
                          "--policy_listen=unix:" + socket,
                          "--socketmap_listen=inet:127.0.0.1:0",
                          "--metrics_listen=127.0.0.1:0",
                          "--port_file=" + ports, "--deadline=200ms"},
                         dir.path() + "/log", dir.path() + "/log")
                  .ok());
  ASSERT_TRUE(testing::WaitForFile(ports, absl::Seconds(20)))
      << ReadFile(dir.path() + "/log");
  struct stat st;
  ASSERT_EQ(::stat(socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  int metrics_port = 0;
  int socketmap_port = 0;
  for (absl::string_view line : absl::StrSplit(ReadFile(ports), '\n')) {
    if (absl::ConsumePrefix(&line, "metrics=")) {
      ASSERT_TRUE(absl::SimpleAtoi(line, &metrics_port));
    }
    if (absl::ConsumePrefix(&line, "socketmap=")) {
      ASSERT_TRUE(absl::SimpleAtoi(line, &socketmap_port));
    }
  }
  ASSERT_GT(metrics_port, 0);
  ASSERT_GT(socketmap_port, 0);
  {
    testing::RawConnection c(socketmap_port);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send(testing::Netstring("rcpt alice@example.com")));
    EXPECT_NE(c.ReadUntil(","), "");
  }
  const std::string metrics = testing::HttpGet(metrics_port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("process_cpu_seconds_total"));
  EXPECT_THAT(metrics, HasSubstr("process_resident_memory_bytes"));
  EXPECT_THAT(metrics,
              HasSubstr(absl::StrCat("rcptguard_postfix_build_info{version=\"",
                                     std::string(ProjectVersion()), "\"} 1")));
  EXPECT_THAT(metrics, HasSubstr("rcptguard_postfix_upstream_failures_total{"
                                 "code=\"UNAVAILABLE\"} 1"));
  EXPECT_THAT(metrics, Not(HasSubstr("code=\"unavailable\"")));
  adapter.Stop();
}

}  // namespace
}  // namespace rcptguard
