// End-to-end: `rcptguard snapshot ...` (the real CLI binary) against a
// private slapd holding a few thousand generated Active Directory entries
// behind AD-like size limits, and the bundled sample LDIF; the snapshot it
// writes is then served by a real rcptguardd. Also the ways a build must
// fail without touching the previous snapshot: a wrong password, the LDAP
// server killed mid-export, Ctrl-C mid-export, an empty result.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/ad_entries.h"
#include "tests/testutil/slapd.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::AdDirectory;
using ::rcptguard::testing::AdDirectoryOptions;
using ::rcptguard::testing::BinaryDir;
using ::rcptguard::testing::ExitCode;
using ::rcptguard::testing::kAdServiceDn;
using ::rcptguard::testing::kAdSuffix;
using ::rcptguard::testing::MakeAdDirectory;
using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SlapdOptions;
using ::rcptguard::testing::SlapdServer;
using ::rcptguard::testing::SourceDir;
using ::rcptguard::testing::Subprocess;
using ::rcptguard::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kPassword[] = "Svc-Pa55-snapshot-e2e-4b1d";
constexpr char kWrongPassword[] = "Wrong-Pa55-snapshot-e2e-77aa";
// AD-like: unpaged searches stop at 500 entries and pages hold at most 500
// (MaxPageSize); only a paged search gets everything. Exports bind as an
// ordinary account: the rootdn would be exempt from every limit.
constexpr char kAdLikeLimits[] =
    "size.soft=500 size.hard=500 size.pr=500 size.prtotal=unlimited";

// --- running the CLI ------------------------------------------------------

struct CliRun {
  int exit_code = -1;  // -signal when killed by a signal
  std::string out, err;
};

std::string Cli() { return BinaryDir() + "/clients/rcptguard"; }

// Starts `rcptguard snapshot ARGS...` with stdout and stderr in files of a
// temp dir of its own; Finish() collects them.
class CliProcess {
 public:
  explicit CliProcess(const std::vector<std::string>& args)
      : dir_(MakeTempDir("rg-cli")) {
    std::vector<std::string> argv = {Cli(), "snapshot"};
    argv.insert(argv.end(), args.begin(), args.end());
    started_ = process_.Start(argv, dir_ + "/out", dir_ + "/err");
  }
  ~CliProcess() { std::filesystem::remove_all(dir_); }

  absl::Status started() const { return started_; }
  pid_t pid() const { return process_.pid(); }
  void Signal(int sig) { process_.Signal(sig); }

  CliRun Finish(absl::Duration timeout = absl::Seconds(60)) {
    CliRun run;
    std::optional<int> status = process_.Wait(timeout);
    if (!status.has_value()) {
      process_.Signal(SIGKILL);
      process_.Wait(absl::Seconds(10));
      run.err = "timed out";
      return run;
    }
    run.exit_code = ExitCode(*status);
    run.out = ReadFile(dir_ + "/out");
    run.err = ReadFile(dir_ + "/err");
    return run;
  }

 private:
  const std::string dir_;
  Subprocess process_;
  absl::Status started_;
};

CliRun RunCli(const std::vector<std::string>& args) {
  CliProcess p(args);
  EXPECT_TRUE(p.started().ok()) << p.started();
  return p.Finish();
}

// The CLI's own last line on stderr (ExportLdap logs progress before it).
std::string LastLine(const std::string& text) {
  std::string t = text;
  if (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t nl = t.rfind('\n');
  return (nl == std::string::npos ? t : t.substr(nl + 1)) + "\n";
}

std::string Describe(const CliRun& run) {
  return absl::StrCat("exit ", run.exit_code, "\nstdout: ", run.out,
                      "\nstderr: ", run.err);
}

// The names in `dir`, sorted.
std::vector<std::string> FolderNames(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.insert(e.path().filename().string());
  }
  return {names.begin(), names.end()};
}

// The "key id 0x..." that keygen printed.
std::string KeyIdOf(const CliRun& keygen) {
  const size_t at = keygen.out.find("key id 0x");
  if (at == std::string::npos) return "";
  return keygen.out.substr(at + 7, 18);
}

// The value after `label` up to the next `until`.
std::string Between(const std::string& text, const std::string& label,
                    const std::string& until) {
  const size_t at = text.find(label);
  if (at == std::string::npos) return "";
  const size_t start = at + label.size();
  return text.substr(start, text.find(until, start) - start);
}

// No generated address may ever appear in what the CLI prints.
void ExpectNoAddress(const std::string& text, const AdDirectory& d) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (const auto* list : {&d.valid, &d.unknown, &d.not_served}) {
    for (const std::string& a : *list) {
      ASSERT_FALSE(absl::StrContains(lower, absl::AsciiStrToLower(a)))
          << "the output shows the address " << a << ":\n"
          << text;
    }
  }
}

std::string MakeKey(const std::string& path) {
  CliRun run = RunCli({"keygen", "--out", path});
  EXPECT_EQ(run.exit_code, 0) << Describe(run);
  return KeyIdOf(run);
}

// --- a TCP relay in front of slapd that breaks mid-export ----------------

// Relays one connection between the CLI and slapd. After `after_bytes` bytes
// from slapd it either SIGKILLs slapd (and then passes on the connection
// loss) or stops relaying altogether (a stalled export).
class LdapRelay {
 public:
  enum class Fault { kKillServer, kStall };

  LdapRelay(int upstream_port, pid_t server_pid, uint64_t after_bytes,
            Fault fault)
      : upstream_port_(upstream_port),
        server_pid_(server_pid),
        after_bytes_(after_bytes),
        fault_(fault) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
            0 ||
        ::listen(listen_fd_, 4) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) !=
            0) {
      ADD_FAILURE() << "relay: cannot listen";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~LdapRelay() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }

  std::string uri() const {
    return absl::StrCat("ldap://127.0.0.1:", port_, "/");
  }
  bool faulted() const { return faulted_; }
  uint64_t relayed() const { return relayed_; }

  bool WaitFaulted(absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (!faulted_ && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return faulted_;
  }

 private:
  // Waits for `fd` to be readable for up to 50 ms; false when stopping.
  bool WaitReadable(int fd) {
    pollfd p{fd, POLLIN, 0};
    while (!stop_) {
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }

  void Run() {
    if (!WaitReadable(listen_fd_)) return;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
    if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
        0) {
      Relay(client, server);
    }
    // Stalled: hold the connection open until the test is done.
    while (faulted_ && fault_ == Fault::kStall && !stop_) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    ::close(server);
    ::close(client);
  }

  void Relay(int client, int server) {
    char buffer[16384];
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    while (!stop_) {
      if (::poll(fds, 2, 50) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const int from = fds[i].fd;
        const int to = i == 0 ? server : client;
        const ssize_t n = ::read(from, buffer, sizeof(buffer));
        if (n <= 0) return;  // one side is gone: close both
        if (::send(to, buffer, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
          return;
        }
        if (from != server) continue;
        relayed_ += static_cast<uint64_t>(n);
        if (relayed_ >= after_bytes_ && !faulted_) {
          if (fault_ == Fault::kStall) {
            faulted_ = true;
            return;
          }
          ::kill(server_pid_, SIGKILL);
          faulted_ = true;
          // Go on relaying: the kernel closes slapd's end, and the read
          // above passes that on as the end of the connection.
        }
      }
    }
  }

  const int upstream_port_;
  const pid_t server_pid_;
  const uint64_t after_bytes_;
  const Fault fault_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> faulted_{false};
  std::atomic<uint64_t> relayed_{0};
  std::thread thread_;
};

// --- keygen ---------------------------------------------------------------

TEST(SnapshotKeygenTest, WritesA0600KeyOnceAndRefusesToOverwrite) {
  const std::string dir = MakeTempDir("rg-keygen");
  const std::string key = dir + "/fingerprint.key";
  CliRun run = RunCli({"keygen", "--out", key});
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  struct stat st;
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 33);
  const std::string content = ReadFile(key);
  ASSERT_EQ(content.size(), 33u);
  EXPECT_EQ(content.back(), '\n');
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_TRUE(absl::ascii_isxdigit(content[i])) << content;
  }
  // The id is shown, the key never.
  const std::string id = KeyIdOf(run);
  EXPECT_THAT(id, StartsWith("0x"));
  EXPECT_EQ(id.size(), 18u);
  EXPECT_THAT(run.out, Not(HasSubstr(content.substr(0, 32))));
  EXPECT_THAT(run.out, Not(HasSubstr(content.substr(0, 16))));

  CliRun again = RunCli({"keygen", "--out", key});
  EXPECT_EQ(again.exit_code, 1) << Describe(again);
  EXPECT_EQ(again.err,
            absl::StrCat("rcptguard snapshot keygen: ", key,
                         " already exists; refusing to overwrite a key "
                         "(snapshots built with it would no longer load). "
                         "Use --force to replace it\n"));
  EXPECT_EQ(ReadFile(key), content);

  CliRun forced = RunCli({"keygen", "--out", key, "--force"});
  ASSERT_EQ(forced.exit_code, 0) << Describe(forced);
  EXPECT_NE(ReadFile(key), content);
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(KeyIdOf(forced), id);
  EXPECT_THAT(FolderNames(dir), ElementsAre("fingerprint.key"));

  CliRun usage = RunCli({"keygen"});
  EXPECT_EQ(usage.exit_code, 2) << Describe(usage);
  std::filesystem::remove_all(dir);
}

// --- live LDAP ------------------------------------------------------------

std::string ServerConfig(const std::string& key, const std::string& snapshot) {
  return absl::StrCat(R"(
listen_address: "127.0.0.1:0"
insecure_plaintext: true
fingerprint_key_file: ")",
                      key, R"("
domains { name: "example.com" subaddress_delimiters: "+" aliases: "mail.example.com" }
domains { name: "example.org" }
directory { snapshot_file: ")",
                      snapshot, R"(" preset: "ad" }
limits { max_recipients_per_request: 1000 }
shutdown { grace_ms: 0 drain_timeout_ms: 1000 }
)");
}

std::vector<std::string> LdapFlags(const std::string& uri,
                                   const std::string& password_file) {
  return {"--from_ldap", uri,          "--base_dn",       kAdSuffix,
          "--bind_dn",   kAdServiceDn, "--password_file", password_file,
          "--page_size", "200",        "--timeout",       "10s"};
}

std::vector<std::string> Concat(std::vector<std::string> a,
                                const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// One slapd and one snapshot built from it with `--config`, shared by the
// read-only tests.
class SnapshotLdapTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    AdDirectoryOptions options;
    options.users = 2400;
    options.service_password = kPassword;
    directory_ = new AdDirectory(MakeAdDirectory(options));
    SlapdOptions slapd_options;
    slapd_options.size_limit = kAdLikeLimits;
    absl::StatusOr<std::unique_ptr<SlapdServer>> slapd =
        SlapdServer::Start(directory_->ldif, slapd_options);
    if (!slapd.ok()) {
      setup_error_ = new std::string(slapd.status().message());
      return;
    }
    slapd_ = slapd->release();
    dir_ = new std::string(MakeTempDir("rg-snapcli"));
    (void)WriteFile(password_file(), absl::StrCat(kPassword, "\n"));
    ::chmod(password_file().c_str(), 0600);
    key_id_ = new std::string(MakeKey(key_file()));
    (void)WriteFile(config_file(), ServerConfig(key_file(), snapshot_file()));
    build_ = new CliRun(
        RunCli(Concat({"build", "--preset", "ad", "--config", config_file()},
                      LdapFlags(slapd_->uri(), password_file()))));
  }
  static void TearDownTestSuite() {
    delete slapd_;
    slapd_ = nullptr;
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
    delete directory_;
    delete build_;
    delete key_id_;
    delete setup_error_;
    directory_ = nullptr;
    build_ = nullptr;
    key_id_ = nullptr;
    setup_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(setup_error_, nullptr) << *setup_error_;
    ASSERT_NE(slapd_, nullptr);
    ASSERT_EQ(build_->exit_code, 0) << Describe(*build_);
  }

  static std::string password_file() { return *dir_ + "/ldap-password"; }
  static std::string key_file() { return *dir_ + "/fingerprint.key"; }
  static std::string config_file() { return *dir_ + "/rcptguard.textproto"; }
  static std::string snapshot_file() { return *dir_ + "/directory.rgs"; }

  static AdDirectory* directory_;
  static SlapdServer* slapd_;
  static std::string* dir_;
  static std::string* key_id_;
  static CliRun* build_;
  static std::string* setup_error_;
};
AdDirectory* SnapshotLdapTest::directory_ = nullptr;
SlapdServer* SnapshotLdapTest::slapd_ = nullptr;
std::string* SnapshotLdapTest::dir_ = nullptr;
std::string* SnapshotLdapTest::key_id_ = nullptr;
CliRun* SnapshotLdapTest::build_ = nullptr;
std::string* SnapshotLdapTest::setup_error_ = nullptr;

TEST_F(SnapshotLdapTest, BuildSummarizesThePagedExportWithoutAddresses) {
  const AdDirectory& d = *directory_;
  // More entries than one unpaged search may return: paging did it.
  ASSERT_GT(d.matching_entries, 500u);
  const std::string& out = build_->out;
  EXPECT_THAT(out, StartsWith(absl::StrCat("wrote ", snapshot_file(),
                                           ": version snap-")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("key id ", *key_id_, ", ")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat(
                  "(example.com ", d.domain_counts.at("example.com"),
                  ", example.org ", d.domain_counts.at("example.org"), ")")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat(
                  "Read ", d.matching_entries, " records from ", slapd_->uri(),
                  " base=", kAdSuffix, ": ", d.included_entries, " included, ",
                  d.disabled_entries, " excluded as disabled accounts")));
  EXPECT_THAT(out, HasSubstr(" 0 malformed"));
  EXPECT_THAT(out, EndsWith(" entries/s.\n"));
  ExpectNoAddress(out, d);
  ExpectNoAddress(build_->err, d);
  EXPECT_THAT(build_->out + build_->err, Not(HasSubstr(kPassword)));
  EXPECT_THAT(FolderNames(*dir_),
              ElementsAre("directory.rgs", "fingerprint.key", "ldap-password",
                          "rcptguard.textproto"));
}

// Issue 17: the generated mailboxes also list an address in the alias
// domain mail.example.com (an Exchange accepted domain configured as an
// alias): the build says so, with the count and the domain.
TEST_F(SnapshotLdapTest, BuildWarnsAboutAddressesInAnAliasDomain) {
  EXPECT_THAT(build_->err,
              ::testing::ContainsRegex(
                  "rcptguard snapshot build: warning: [1-9][0-9]* addresses "
                  "are written with alias domain mail\\.example\\.com and "
                  "were folded into example\\.com; if mail\\.example\\.com "
                  "is an Exchange accepted domain, serve it as a domain of "
                  "its own"));
}

// Issue 17: a search that returns nothing at all (here a filter that
// matches no entry; in the field, the ad preset's filter on a schema
// without `computer`) names the filter and how to override it.
TEST_F(SnapshotLdapTest, NoEntryNamesTheFilterAndHowToOverrideIt) {
  const std::string dir = MakeTempDir("rg-nofilter");
  const std::string out = dir + "/directory.rgs";
  const std::string filter = "(mail=no-such-entry@example.com)";
  CliRun run = RunCli(Concat({"build", "--preset", "ad", "--config",
                              config_file(), "--out", out, "--filter", filter},
                             LdapFlags(slapd_->uri(), password_file())));
  EXPECT_EQ(run.exit_code, 1) << Describe(run);
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(LastLine(run.err),
              StartsWith(absl::StrCat(
                  "rcptguard snapshot build: the search of base DN(s) \"",
                  kAdSuffix, "\" on ", slapd_->uri(), " with filter \"", filter,
                  "\" returned no entry: ")));
  EXPECT_THAT(run.err, HasSubstr("pass --filter, e.g. --filter='(&"));
  EXPECT_THAT(run.err, EndsWith("'; nothing written\n"));
  EXPECT_TRUE(FolderNames(dir).empty());
  std::filesystem::remove_all(dir);
}

TEST_F(SnapshotLdapTest, InspectShowsCountsPerDomain) {
  const AdDirectory& d = *directory_;
  CliRun text = RunCli({"inspect", snapshot_file()});
  ASSERT_EQ(text.exit_code, 0) << Describe(text);
  const std::string version = Between(build_->out, "version ", ",");
  EXPECT_THAT(text.out, HasSubstr(absl::StrCat("version     ", version, "\n")));
  EXPECT_THAT(text.out,
              HasSubstr(absl::StrCat("key id      ", *key_id_, "\n")));
  EXPECT_THAT(text.out, HasSubstr(absl::StrCat("source      ", slapd_->uri(),
                                               " base=", kAdSuffix, "\n")));
  EXPECT_THAT(text.out, HasSubstr("created at  "));
  ExpectNoAddress(text.out, d);

  CliRun json = RunCli({"inspect", snapshot_file(), "--json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  EXPECT_THAT(json.out,
              HasSubstr(absl::StrCat("\"version\": \"", version, "\"")));
  EXPECT_THAT(json.out,
              HasSubstr(absl::StrCat("\"key_id\": \"", *key_id_, "\"")));
  EXPECT_THAT(json.out,
              HasSubstr(absl::StrCat(
                  "{\"name\": \"example.com\", \"mode\": \"enforce\", "
                  "\"subaddress_delimiters\": \"+\", \"aliases\": "
                  "[\"mail.example.com\"], \"address_count\": ",
                  d.domain_counts.at("example.com"), "}")));
  EXPECT_THAT(json.out,
              HasSubstr(absl::StrCat(
                  "{\"name\": \"example.org\", \"mode\": \"enforce\", "
                  "\"subaddress_delimiters\": \"\", \"aliases\": [], "
                  "\"address_count\": ",
                  d.domain_counts.at("example.org"), "}")));
  EXPECT_THAT(json.out,
              HasSubstr(absl::StrCat("\"address_count\": ",
                                     d.domain_counts.at("example.com") +
                                         d.domain_counts.at("example.org"),
                                     ",\n")));
  ExpectNoAddress(json.out, d);
}

TEST_F(SnapshotLdapTest, VerifyAcceptsTheKeyAndRefusesAnother) {
  CliRun ok = RunCli({"verify", snapshot_file(), "--key", key_file()});
  ASSERT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_THAT(ok.out, StartsWith(absl::StrCat("OK ", snapshot_file(),
                                              ": format 1.0, checksum 0x")));
  EXPECT_THAT(ok.out, HasSubstr(absl::StrCat("key id ", *key_id_, " matches ",
                                             key_file())));

  CliRun with_config =
      RunCli({"verify", snapshot_file(), "--config", config_file()});
  ASSERT_EQ(with_config.exit_code, 0) << Describe(with_config);
  EXPECT_THAT(
      with_config.out,
      HasSubstr(absl::StrCat("every domain of ", config_file(), " present")));

  const std::string other = *dir_ + "/other.key";
  const std::string other_id = MakeKey(other);
  CliRun wrong = RunCli({"verify", snapshot_file(), "--key", other});
  EXPECT_EQ(wrong.exit_code, 1) << Describe(wrong);
  EXPECT_EQ(wrong.out, "");
  EXPECT_EQ(wrong.err, absl::StrCat("rcptguard snapshot verify: snapshot ",
                                    snapshot_file(), " was made with key id ",
                                    *key_id_, ", the key in ", other,
                                    " has key id ", other_id, "\n"));
  std::filesystem::remove(other);

  // One flipped byte: the checksum catches it, for verify and inspect alike.
  const std::string corrupt = *dir_ + "/corrupt.rgs";
  std::string bytes = ReadFile(snapshot_file());
  bytes[bytes.size() / 2] ^= 0x01;
  ASSERT_TRUE(WriteFile(corrupt, bytes).ok());
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"verify", corrupt, "--key", key_file()}, {"inspect", corrupt}}) {
    CliRun bad = RunCli(args);
    EXPECT_EQ(bad.exit_code, 1) << Describe(bad);
    EXPECT_THAT(bad.err, StartsWith(absl::StrCat(
                             "rcptguard snapshot ", args[0], ": snapshot ",
                             corrupt, ": checksum mismatch: stored 0x")));
    EXPECT_THAT(bad.err, EndsWith(" (the file is corrupt)\n"));
  }
  std::filesystem::remove(corrupt);

  CliRun both = RunCli({"verify", snapshot_file(), "--key", key_file(),
                        "--config", config_file()});
  EXPECT_EQ(both.exit_code, 2) << Describe(both);
}

TEST_F(SnapshotLdapTest, RcptguarddServesTheSnapshot) {
  const AdDirectory& d = *directory_;
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      server.Start(ServerConfig(key_file(), snapshot_file())));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  const std::string version = Between(build_->out, "version ", ",");
  auto stub = v1::RecipientValidation::NewStub(server.channel());

  auto check = [&](const std::vector<std::string>& addresses,
                   v1::RecipientStatus want) {
    for (size_t begin = 0; begin < addresses.size(); begin += 1000) {
      v1::ValidateRequest request;
      request.set_request_id(begin + 1);
      request.set_dry_run(true);  // lookups only: no harvest counting
      const size_t end = std::min(addresses.size(), begin + 1000);
      for (size_t i = begin; i < end; ++i) request.add_recipients(addresses[i]);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
      v1::ValidateResponse response;
      grpc::Status status = stub->Validate(&ctx, request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(response.directory_version(), version);
      ASSERT_EQ(response.verdicts_size(), static_cast<int>(end - begin));
      for (size_t i = begin; i < end; ++i) {
        EXPECT_EQ(response.verdicts(i - begin).status(), want)
            << addresses[i] << " is "
            << v1::RecipientStatus_Name(response.verdicts(i - begin).status());
      }
    }
  };
  ASSERT_GT(d.valid.size(), 5000u);
  check(d.valid, v1::RECIPIENT_STATUS_VALID);
  check(d.unknown, v1::RECIPIENT_STATUS_UNKNOWN);
  check(d.not_served, v1::RECIPIENT_STATUS_NOT_SERVED);
  check({"user7+tag@example.com", "USER7@MAIL.EXAMPLE.COM",
         "postmaster@example.org"},
        v1::RECIPIENT_STATUS_VALID);
  check({"nobody@example.com", "user3@example.com"},
        v1::RECIPIENT_STATUS_UNKNOWN);
}

TEST_F(SnapshotLdapTest, SeveralBaseDnsRepeatedOrSeparatedAreAllExported) {
  const AdDirectory& d = *directory_;
  const std::string dir = MakeTempDir("rg-bases");
  const std::string out = dir + "/directory.rgs";
  auto ou = [](const char* name) {
    return absl::StrCat("ou=", name, ",", kAdSuffix);
  };
  std::vector<std::string> flags = LdapFlags(slapd_->uri(), password_file());
  flags[3] = ou("People");  // replaces the suffix as the first base
  flags.insert(flags.end(), {"--base_dn", ou("Resources"), "--base_dn",
                             absl::StrCat(ou("Groups"), ";", ou("Contacts"))});
  CliRun run = RunCli(Concat(
      {"build", "--preset", "ad", "--config", config_file(), "--out", out},
      flags));
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  // Every recipient lives under one of these four OUs.
  EXPECT_THAT(run.out,
              HasSubstr(absl::StrCat(
                  "Read ", d.matching_entries, " records from ", slapd_->uri(),
                  " base=", ou("People"), ";", ou("Resources"), ";",
                  ou("Groups"), ";", ou("Contacts"), ": ")));
  EXPECT_THAT(run.out,
              HasSubstr(absl::StrCat(
                  "(example.com ", d.domain_counts.at("example.com"),
                  ", example.org ", d.domain_counts.at("example.org"), ")")));
  std::filesystem::remove_all(dir);
}

// The snapshot the failure tests start from, in a folder of its own.
class PreviousSnapshot {
 public:
  explicit PreviousSnapshot(const std::string& from)
      : dir_(MakeTempDir("rg-prev")), path_(dir_ + "/directory.rgs") {
    std::filesystem::copy_file(from, path_);
    bytes_ = ReadFile(path_);
  }
  ~PreviousSnapshot() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }
  // Byte-identical and alone in its folder (no temporary file left).
  void ExpectUntouched() const {
    EXPECT_EQ(ReadFile(path_), bytes_) << "the previous snapshot changed";
    EXPECT_THAT(FolderNames(dir_), ElementsAre("directory.rgs"));
  }

 private:
  const std::string dir_;
  const std::string path_;
  std::string bytes_;
};

TEST_F(SnapshotLdapTest, WrongPasswordFailsAndWritesNothing) {
  PreviousSnapshot previous(snapshot_file());
  const std::string wrong = *dir_ + "/wrong-password";
  ASSERT_TRUE(WriteFile(wrong, absl::StrCat(kWrongPassword, "\n")).ok());
  ::chmod(wrong.c_str(), 0600);
  CliRun run = RunCli(Concat({"build", "--preset", "ad", "--config",
                              config_file(), "--out", previous.path()},
                             LdapFlags(slapd_->uri(), wrong)));
  std::filesystem::remove(wrong);
  EXPECT_EQ(run.exit_code, 1) << Describe(run);
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(LastLine(run.err),
              StartsWith(absl::StrCat("rcptguard snapshot build: LDAP bind to ",
                                      slapd_->uri(), " as \"", kAdServiceDn,
                                      "\" failed: Invalid credentials (49)")));
  EXPECT_THAT(run.err, EndsWith("; nothing written\n"));
  EXPECT_THAT(run.err, Not(HasSubstr(kWrongPassword)));
  previous.ExpectUntouched();
}

TEST_F(SnapshotLdapTest, InterruptedExportWritesNothing) {
  PreviousSnapshot previous(snapshot_file());
  LdapRelay relay(slapd_->port(), slapd_->pid(), 64 * 1024,
                  LdapRelay::Fault::kStall);
  std::vector<std::string> flags = LdapFlags(relay.uri(), password_file());
  CliProcess cli(Concat({"build", "--preset", "ad", "--config", config_file(),
                         "--out", previous.path()},
                        flags));
  ASSERT_TRUE(cli.started().ok());
  ASSERT_TRUE(relay.WaitFaulted(absl::Seconds(20)));
  cli.Signal(SIGINT);  // Ctrl-C while a page is outstanding
  CliRun run = cli.Finish();
  EXPECT_EQ(run.exit_code, -SIGINT) << Describe(run);
  EXPECT_EQ(run.out, "");
  previous.ExpectUntouched();
}

TEST_F(SnapshotLdapTest, EmptyResultIsRefused) {
  const std::string dir = MakeTempDir("rg-empty");
  const std::string out = dir + "/directory.rgs";
  CliRun run =
      RunCli(Concat({"build", "--preset", "ad", "--domains",
                     "nothing-here.example", "--key", key_file(), "--out", out},
                    LdapFlags(slapd_->uri(), password_file())));
  EXPECT_EQ(run.exit_code, 1) << Describe(run);
  EXPECT_THAT(LastLine(run.err),
              StartsWith(absl::StrCat(
                  "rcptguard snapshot build: no address in a served domain (",
                  directory_->matching_entries, " records read")));
  EXPECT_THAT(run.err, EndsWith("refusing to write an empty snapshot, nothing "
                                "written\n"));
  EXPECT_TRUE(FolderNames(dir).empty());
  std::filesystem::remove_all(dir);
}

TEST(SnapshotLdapFailureTest, ServerKilledMidExportFailsAndWritesNothing) {
  AdDirectoryOptions options;
  options.users = 1500;
  options.service_password = kPassword;
  const AdDirectory d = MakeAdDirectory(options);
  SlapdOptions slapd_options;
  slapd_options.size_limit = kAdLikeLimits;
  absl::StatusOr<std::unique_ptr<SlapdServer>> slapd =
      SlapdServer::Start(d.ldif, slapd_options);
  ASSERT_TRUE(slapd.ok()) << slapd.status();

  const std::string dir = MakeTempDir("rg-kill");
  const std::string password = dir + "/ldap-password";
  const std::string key = dir + "/fingerprint.key";
  ASSERT_TRUE(WriteFile(password, absl::StrCat(kPassword, "\n")).ok());
  ::chmod(password.c_str(), 0600);
  MakeKey(key);
  // The previous snapshot: a complete export of this very server.
  const std::string first = dir + "/first.rgs";
  CliRun good =
      RunCli(Concat({"build", "--preset", "ad", "--domains",
                     "example.com,example.org", "--key", key, "--out", first},
                    LdapFlags((*slapd)->uri(), password)));
  ASSERT_EQ(good.exit_code, 0) << Describe(good);
  PreviousSnapshot previous(first);

  LdapRelay relay((*slapd)->port(), (*slapd)->pid(), 100 * 1024,
                  LdapRelay::Fault::kKillServer);
  std::vector<std::string> flags = LdapFlags(relay.uri(), password);
  flags.insert(flags.end(), {"--page_size", "100"});
  CliRun run = RunCli(
      Concat({"build", "--preset", "ad", "--domains", "example.com,example.org",
              "--key", key, "--out", previous.path()},
             flags));
  EXPECT_TRUE(relay.faulted());
  EXPECT_EQ(run.exit_code, 1) << Describe(run);
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(LastLine(run.err),
              StartsWith(absl::StrCat(
                  "rcptguard snapshot build: LDAP search of \"", kAdSuffix,
                  "\" on ", relay.uri(), " failed on page ")));
  EXPECT_THAT(run.err, HasSubstr("Can't contact LDAP server (-1)"));
  EXPECT_THAT(run.err, EndsWith("; nothing written\n"));
  // It failed mid-export, after some pages had arrived.
  const std::string after = Between(run.err, " after ", " entries");
  uint64_t entries = 0;
  ASSERT_TRUE(absl::SimpleAtoi(after, &entries)) << run.err;
  EXPECT_GT(entries, 0u);
  EXPECT_LT(entries, d.matching_entries);
  previous.ExpectUntouched();
  std::filesystem::remove_all(dir);
}

// --- LDIF -----------------------------------------------------------------

// The number after "\"KEY\": " in the generator's JSON.
uint64_t JsonNumber(const std::string& json, const std::string& key) {
  const std::string label = absl::StrCat("\"", key, "\": ");
  const size_t at = json.find(label);
  EXPECT_NE(at, std::string::npos) << key;
  if (at == std::string::npos) return 0;
  size_t end = at + label.size();
  while (end < json.size() && absl::ascii_isdigit(json[end])) ++end;
  uint64_t n = 0;
  EXPECT_TRUE(absl::SimpleAtoi(
      json.substr(at + label.size(), end - at - label.size()), &n))
      << key;
  return n;
}

// Distinct addresses per domain in the generator's "valid_addresses" list
// (plain strings without escapes, already in normalized form).
std::map<std::string, uint64_t> ValidPerDomain(const std::string& json) {
  std::map<std::string, std::set<std::string>> sets;
  const std::string list = Between(json, "\"valid_addresses\": [", "]");
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.size() < 2) continue;
    const std::string address(item.substr(1, item.size() - 2));
    sets[address.substr(address.find('@') + 1)].insert(address);
  }
  std::map<std::string, uint64_t> counts;
  for (const auto& [domain, set] : sets) counts[domain] = set.size();
  return counts;
}

TEST(SnapshotLdifTest, SampleRoundTripMatchesTheExpectedCounts) {
  const std::string examples = SourceDir() + "/deploy/examples";
  const std::string json = ReadFile(examples + "/sample.expected.json");
  ASSERT_FALSE(json.empty());
  const std::string dir = MakeTempDir("rg-ldif");
  const std::string key = dir + "/fingerprint.key";
  const std::string out = dir + "/sample.rgs";
  const std::string key_id = MakeKey(key);

  CliRun build =
      RunCli({"build", "--from_ldif", examples + "/sample.ldif", "--preset",
              "ad", "--domains", "example.com,example.org,mail.example.com",
              "--key", key, "--out", out, "--snapshot_version", "sample-1",
              "--source", "sample.ldif (generated)"});
  ASSERT_EQ(build.exit_code, 0) << Describe(build);
  EXPECT_THAT(
      build.out,
      HasSubstr(absl::StrCat(
          "Read ", JsonNumber(json, "records"),
          " records from sample.ldif (generated): ",
          JsonNumber(json, "included"), " included, ",
          JsonNumber(json, "disabled"), " excluded as disabled accounts, ",
          JsonNumber(json, "no_addresses"), " without addresses, ",
          JsonNumber(json, "wrong_object_class"),
          " of other object classes. Of ", JsonNumber(json, "addresses"),
          " addresses found")));
  for (const char* demo :
       {"alice@example.com", "info@example.com", "carol.former@example.com"}) {
    EXPECT_THAT(build.out, Not(HasSubstr(demo)));
  }

  CliRun inspect = RunCli({"inspect", out, "--json"});
  ASSERT_EQ(inspect.exit_code, 0) << Describe(inspect);
  EXPECT_THAT(inspect.out, HasSubstr("\"version\": \"sample-1\""));
  EXPECT_THAT(inspect.out,
              HasSubstr("\"source\": \"sample.ldif (generated)\""));
  EXPECT_THAT(inspect.out, HasSubstr(absl::StrCat("\"key_id\": \"", key_id)));
  const std::map<std::string, uint64_t> want = ValidPerDomain(json);
  ASSERT_EQ(want.size(), 3u);
  uint64_t total = 0;
  for (const auto& [domain, count] : want) {
    EXPECT_THAT(inspect.out,
                HasSubstr(absl::StrCat("{\"name\": \"", domain,
                                       "\", \"mode\": \"enforce\", "
                                       "\"subaddress_delimiters\": \"\", "
                                       "\"aliases\": [], \"address_count\": ",
                                       count, "}")));
    total += count;
  }
  EXPECT_THAT(inspect.out,
              HasSubstr(absl::StrCat("\"address_count\": ", total, ",\n")));
  EXPECT_THAT(inspect.out, Not(HasSubstr("alice@")));

  CliRun verify = RunCli({"verify", out, "--key", key});
  EXPECT_EQ(verify.exit_code, 0) << Describe(verify);
  std::filesystem::remove_all(dir);
}

TEST(SnapshotLdifTest, UsageErrorsExitTwoAndWriteNothing) {
  const std::string dir = MakeTempDir("rg-usage");
  const std::string sample = SourceDir() + "/deploy/examples/sample.ldif";
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"build", "--from_ldif", sample, "--from_ldap", "ldap://127.0.0.1/",
       "--preset", "ad", "--domains", "example.com", "--key", dir + "/k",
       "--out", dir + "/s.rgs"},
      {"build", "--from_ldif", sample, "--preset", "ad", "--domains",
       "example.com", "--key", dir + "/k", "--out", dir + "/s.rgs", "--base_dn",
       "dc=example,dc=com"},
      {"build", "--from_ldif", sample, "--domains", "example.com", "--key",
       dir + "/k", "--out", dir + "/s.rgs"},
      {"inspect"},
      {"verify", "a.rgs", "b.rgs"},
  };
  for (const auto& args : cases) {
    CliRun run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << absl::StrJoin(args, " ") << "\n"
                                << Describe(run);
  }
  EXPECT_TRUE(FolderNames(dir).empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rcptguard
