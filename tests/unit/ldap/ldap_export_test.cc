// End-to-end tests of the live LDAP export against a private slapd
// (tests/testutil/slapd.h) holding generated Active Directory-shaped data.
#include "server/ldap/ldap_export.h"

#include <arpa/inet.h>
#include <ldap.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/ldif/ldif.h"
#include "server/ldif/mapping.h"
#include "tests/testutil/ad_entries.h"
#include "tests/testutil/slapd.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::ldap {
namespace {

using ::rcptguard::ldif::AttributeMapping;
using ::rcptguard::ldif::EntryOutcome;
using ::rcptguard::ldif::LdifRecord;
using ::rcptguard::ldif::MapEntry;
using ::rcptguard::ldif::MappedEntry;
using ::rcptguard::ldif::Preset;
using ::rcptguard::testing::AdDirectory;
using ::rcptguard::testing::AdDirectoryOptions;
using ::rcptguard::testing::MakeAdDirectory;
using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::SlapdOptions;
using ::rcptguard::testing::SlapdServer;
using ::rcptguard::testing::SourceDir;
using ::rcptguard::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kSuffix = ::rcptguard::testing::kAdSuffix;
constexpr const char* kServiceDn = ::rcptguard::testing::kAdServiceDn;
// Distinctive, so a leak into an error message or log is easy to spot.
constexpr char kServicePassword[] = "Svc-Pa55-never-in-messages-7f3a";
constexpr char kWrongPassword[] = "Wrong-Pa55-never-in-messages-91c2";
// AD-like: unpaged searches stop at 500 entries, pages hold at most 500
// (AD's MaxPageSize), and a paged search may return everything.
constexpr char kAdLikeLimits[] =
    "size.soft=500 size.hard=500 size.pr=500 size.prtotal=unlimited";

// --- generated AD-shaped directory ----------------------------------------

// `users` ordinary mailbox users plus a fixed mix of every other kind
// (tests/testutil/ad_entries.h), the service account's password being
// kServicePassword.
AdDirectory MakeAdFixture(int users) {
  AdDirectoryOptions options;
  options.users = users;
  options.service_password = kServicePassword;
  options.alias_domain_addresses = false;
  options.resources_per_kind = 60;
  options.mail_users = 100;
  options.mail_contacts = 180;
  options.external_contacts = 20;
  options.groups = 150;
  options.dynamic_groups = 20;
  options.public_folders = 10;
  options.computers = 50;
  options.users_without_mail = 100;
  return MakeAdDirectory(options);
}

// --- helpers --------------------------------------------------------------

// A password file (mode 0600) in a temp dir of its own, removed with it.
class PasswordFile {
 public:
  explicit PasswordFile(const std::string& password,
                        const std::string& trailer = "\n")
      : dir_(MakeTempDir("rg-ldap-pw")), path_(dir_ + "/password") {
    EXPECT_TRUE(WriteFile(path_, password + trailer).ok());
    ::chmod(path_.c_str(), 0600);
  }
  PasswordFile(const PasswordFile&) = delete;
  PasswordFile& operator=(const PasswordFile&) = delete;
  ~PasswordFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

 private:
  const std::string dir_;
  const std::string path_;
};

LdapExportOptions AdOptions(const SlapdServer& slapd,
                            const std::string& password_file) {
  const AttributeMapping mapping =
      AttributeMapping::ForPreset(Preset::kActiveDirectory);
  LdapExportOptions o;
  o.uri = slapd.uri();
  o.bind_dn = kServiceDn;
  o.password_file = password_file;
  o.base_dns = {kSuffix};
  o.filter = DefaultFilter(mapping);
  o.attributes = RequestedAttributes(mapping);
  o.page_size = 200;
  o.timeout = absl::Seconds(10);
  return o;
}

// Neither password may ever show up in an error.
void ExpectNoSecrets(const absl::Status& status) {
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(kServicePassword)));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(kWrongPassword)));
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// --- the shared AD-like server (read-only tests) -------------------------

class AdExportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new AdDirectory(MakeAdFixture(2400));
    SlapdOptions options;
    options.size_limit = kAdLikeLimits;
    absl::StatusOr<std::unique_ptr<SlapdServer>> slapd =
        SlapdServer::Start(fixture_->ldif, options);
    if (!slapd.ok()) {
      setup_error_ = new std::string(Message(slapd.status()));
      return;
    }
    slapd_ = slapd->release();
    password_ = new PasswordFile(kServicePassword);
  }
  static void TearDownTestSuite() {
    delete slapd_;
    slapd_ = nullptr;
    delete fixture_;
    fixture_ = nullptr;
    delete setup_error_;
    setup_error_ = nullptr;
    delete password_;
    password_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(setup_error_, nullptr) << *setup_error_;
    ASSERT_NE(slapd_, nullptr);
  }

  static AdDirectory* fixture_;
  static SlapdServer* slapd_;
  static const std::string& password_file() { return password_->path(); }

  static PasswordFile* password_;
  static std::string* setup_error_;
};
AdDirectory* AdExportTest::fixture_ = nullptr;
SlapdServer* AdExportTest::slapd_ = nullptr;
PasswordFile* AdExportTest::password_ = nullptr;
std::string* AdExportTest::setup_error_ = nullptr;

TEST_F(AdExportTest, PagedExportYieldsExactlyTheRecipientAddresses) {
  const AttributeMapping mapping =
      AttributeMapping::ForPreset(Preset::kActiveDirectory);
  std::set<std::string> included;
  uint64_t disabled = 0;
  uint64_t records = 0;
  bool names_lower_case = true;
  absl::StatusOr<LdapExportStats> stats = ExportLdap(
      AdOptions(*slapd_, password_file()), [&](const LdifRecord& record) {
        ++records;
        for (const auto& a : record.attributes) {
          for (char c : a.name) names_lower_case &= !(c >= 'A' && c <= 'Z');
        }
        MappedEntry e = MapEntry(record, mapping);
        if (e.outcome == EntryOutcome::kIncluded)
          included.insert(e.addresses.begin(), e.addresses.end());
        if (e.outcome == EntryOutcome::kDisabledAccount) ++disabled;
      });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, fixture_->matching_entries);
  EXPECT_EQ(records, fixture_->matching_entries);
  // 500 entries per unpaged search at most on this server: paging mattered.
  EXPECT_GT(fixture_->matching_entries, 500u);
  EXPECT_GE(stats->pages, (fixture_->matching_entries + 199) / 200);
  EXPECT_EQ(stats->references, 0u);
  EXPECT_EQ(disabled, fixture_->disabled_entries);
  EXPECT_TRUE(names_lower_case);

  EXPECT_EQ(included.size(), fixture_->mapped.size());
  for (const std::string& a : fixture_->mapped)
    EXPECT_TRUE(included.count(a)) << "missing " << a;
  for (const std::string& a : fixture_->not_mapped)
    EXPECT_FALSE(included.count(a)) << "must not be included: " << a;
}

TEST_F(AdExportTest, RecordsCarryDnAndRawValues) {
  LdapExportOptions options = AdOptions(*slapd_, password_file());
  options.base_dns = {absl::StrCat("cn=user7,ou=People,", kSuffix)};
  std::vector<LdifRecord> records;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [&](const LdifRecord& r) { records.push_back(r); });
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].dn, absl::StrCat("cn=user7,ou=People,", kSuffix));
  EXPECT_THAT(records[0].Values("mail"),
              ::testing::ElementsAre("User7@Example.com"));
  EXPECT_EQ(records[0].Values("proxyaddresses").size(), 4u);
  EXPECT_THAT(records[0].Values("useraccountcontrol"),
              ::testing::ElementsAre("512"));
  EXPECT_TRUE(records[0].HasObjectClass("user"));
  // Not requested, so not exported.
  EXPECT_TRUE(records[0].Values("userprincipalname").empty());
  EXPECT_EQ(stats->pages, 1u);
}

TEST_F(AdExportTest, UnpagedSearchFailsWithSizeLimitExceeded) {
  // What paging protects against: the same search without the control.
  LDAP* ld = nullptr;
  ASSERT_EQ(ldap_initialize(&ld, slapd_->uri().c_str()), LDAP_SUCCESS);
  const int version = LDAP_VERSION3;
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
  berval cred;
  std::string password = kServicePassword;
  cred.bv_val = password.data();
  cred.bv_len = password.size();
  ASSERT_EQ(ldap_sasl_bind_s(ld, kServiceDn, LDAP_SASL_SIMPLE, &cred, nullptr,
                             nullptr, nullptr),
            LDAP_SUCCESS);
  const std::string filter =
      DefaultFilter(AttributeMapping::ForPreset(Preset::kActiveDirectory));
  char* attrs[] = {const_cast<char*>("mail"), nullptr};
  LDAPMessage* result = nullptr;
  const int rc =
      ldap_search_ext_s(ld, kSuffix, LDAP_SCOPE_SUBTREE, filter.c_str(), attrs,
                        0, nullptr, nullptr, nullptr, LDAP_NO_LIMIT, &result);
  EXPECT_EQ(rc, LDAP_SIZELIMIT_EXCEEDED) << ldap_err2string(rc);
  EXPECT_EQ(ldap_count_entries(ld, result), 500);
  ldap_msgfree(result);
  ldap_unbind_ext_s(ld, nullptr, nullptr);
}

TEST_F(AdExportTest, PageSizeAboveServerPageLimitIsAnError) {
  // slapd refuses a page size above size.pr (AD would cap it at MaxPageSize
  // instead); either way the export must not go on as if all was well.
  LdapExportOptions options = AdOptions(*slapd_, password_file());
  options.page_size = 5000;
  uint64_t sunk = 0;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [&](const LdifRecord&) { ++sunk; });
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Message(stats.status()),
            absl::StrCat("LDAP search of \"", kSuffix, "\" on ", slapd_->uri(),
                         " failed on page 1 after 0 entries: Administrative "
                         "limit exceeded (11); "
                         "diagnostic: illegal pagedResults page size"));
  EXPECT_EQ(sunk, 0u);
}

TEST_F(AdExportTest, SeveralBaseDnsAreSearchedInOrder) {
  LdapExportOptions options = AdOptions(*slapd_, password_file());
  options.base_dns = {absl::StrCat("ou=Groups,", kSuffix),
                      absl::StrCat("ou=Contacts,", kSuffix)};
  std::vector<std::string> dns;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [&](const LdifRecord& r) { dns.push_back(r.dn); });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, 150u + 20u + 10u + 200u);
  ASSERT_FALSE(dns.empty());
  EXPECT_THAT(dns.front(), HasSubstr("ou=Groups"));
  EXPECT_THAT(dns.back(), HasSubstr("ou=Contacts"));
}

TEST_F(AdExportTest, WrongPasswordIsInvalidCredentials) {
  const PasswordFile wrong(kWrongPassword);
  bool called = false;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(AdOptions(*slapd_, wrong.path()),
                 [&](const LdifRecord&) { called = true; });
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Message(stats.status()),
              StartsWith(absl::StrCat("LDAP bind to ", slapd_->uri(), " as \"",
                                      kServiceDn,
                                      "\" failed: Invalid credentials (49)")));
  ExpectNoSecrets(stats.status());
  EXPECT_FALSE(called);
}

TEST_F(AdExportTest, MissingBaseDnIsNoSuchObject) {
  LdapExportOptions options = AdOptions(*slapd_, password_file());
  options.base_dns = {kSuffix, absl::StrCat("ou=Nowhere,", kSuffix)};
  uint64_t sunk = 0;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [&](const LdifRecord&) { ++sunk; });
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      Message(stats.status()),
      StartsWith(absl::StrCat(
          "LDAP search of \"ou=Nowhere,", kSuffix, "\" on ", slapd_->uri(),
          " failed on page 1 after 0 entries: No such object (32)")));
  // The first base was exported in full before the failure: the caller must
  // discard it.
  EXPECT_EQ(sunk, fixture_->matching_entries);
  ExpectNoSecrets(stats.status());
}

TEST_F(AdExportTest, MissingPasswordFileFailsBeforeConnecting) {
  const PasswordFile other("unused");
  const std::string path = other.dir() + "/absent";
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(AdOptions(*slapd_, path), [](const LdifRecord&) {});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Message(stats.status()),
            absl::StrCat("cannot read LDAP bind password file \"", path,
                         "\": No such file or directory"));
}

TEST_F(AdExportTest, EmptyPasswordFileIsRefused) {
  const PasswordFile file("", "\n");
  const std::string& path = file.path();
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(AdOptions(*slapd_, path), [](const LdifRecord&) {});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(stats.status()),
              StartsWith(absl::StrCat("LDAP bind password file \"", path,
                                      "\" is empty")));
}

TEST_F(AdExportTest, PasswordFileWithCrLfWorks) {
  const PasswordFile file(kServicePassword, "\r\n");
  LdapExportOptions options = AdOptions(*slapd_, file.path());
  options.base_dns = {absl::StrCat("ou=Contacts,", kSuffix)};
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [](const LdifRecord&) {});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, 200u);
}

TEST_F(AdExportTest, StartTlsRefusedByServerIsAnErrorNotAFallback) {
  LdapExportOptions options = AdOptions(*slapd_, password_file());
  options.start_tls = true;
  bool called = false;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [&](const LdifRecord&) { called = true; });
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(
      Message(stats.status()),
      StartsWith(absl::StrCat("LDAP StartTLS on ", slapd_->uri(),
                              " failed (refusing to continue without TLS): ")));
  EXPECT_FALSE(called);
  ExpectNoSecrets(stats.status());
}

TEST_F(AdExportTest, AnonymousExportSeesWhatAclsAllow) {
  LdapExportOptions options = AdOptions(*slapd_, "");
  options.bind_dn.clear();
  options.base_dns = {absl::StrCat("ou=Groups,", kSuffix)};
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [](const LdifRecord&) {});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, 180u);
}

TEST_F(AdExportTest, BadFilterIsInvalidArgument) {
  LdapExportOptions options = AdOptions(*slapd_, password_file());
  options.filter = "(&(mail=*)";
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [](const LdifRecord&) {});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(stats.status()), HasSubstr("Bad search filter (-7)"));
}

// --- failures that need a server of their own -----------------------------

// A small directory with `users` mailbox users and no limits.
std::unique_ptr<SlapdServer> StartSmall(
    int users, const std::string& size_limit = "unlimited") {
  SlapdOptions options;
  options.size_limit = size_limit;
  absl::StatusOr<std::unique_ptr<SlapdServer>> slapd =
      SlapdServer::Start(MakeAdFixture(users).ldif, options);
  EXPECT_TRUE(slapd.ok()) << slapd.status();
  return slapd.ok() ? std::move(*slapd) : nullptr;
}

TEST(LdapExportFailureTest,
     TotalSizeLimitOnPagedSearchIsAnErrorNotATruncatedSuccess) {
  // A plain `sizelimit 500` caps paged searches too: slapd stops after 500
  // entries with sizeLimitExceeded. The export must fail, not end short.
  std::unique_ptr<SlapdServer> slapd = StartSmall(800, "500");
  ASSERT_NE(slapd, nullptr);
  const PasswordFile password(kServicePassword);
  const std::string& password_file = password.path();
  uint64_t sunk = 0;
  absl::StatusOr<LdapExportStats> stats = ExportLdap(
      AdOptions(*slapd, password_file), [&](const LdifRecord&) { ++sunk; });
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Message(stats.status()),
              StartsWith(absl::StrCat("LDAP search of \"", kSuffix, "\" on ",
                                      slapd->uri(), " failed on page 3 after ",
                                      "400 entries: Size limit exceeded (4)")));
  EXPECT_EQ(sunk, 500u);
}

// A server whose schema has no `computer` class (OpenLDAP without an AD
// schema): the ad preset's filter, which excludes computers by class,
// matches nothing there. NoEntriesHint names the filter and a filter that
// works, and that filter does.
TEST(LdapExportFailureTest, AdFilterOnASchemaWithoutComputerMatchesNothing) {
  const std::string dir = MakeTempDir("rg-ldap-schema");
  std::string schema =
      ReadFile(SourceDir() + "/tests/testdata/ldap/ad-lite.schema");
  const size_t at = schema.find("objectclass ( 1.2.840.113556.1.3.30");
  ASSERT_NE(at, std::string::npos);
  schema.erase(at, schema.find("\n\n", at) - at);
  ASSERT_THAT(schema, Not(HasSubstr("'computer'")));
  ASSERT_TRUE(WriteFile(dir + "/no-computer.schema", schema).ok());
  SlapdOptions slapd_options;
  slapd_options.ad_schema_file = dir + "/no-computer.schema";
  AdDirectoryOptions fixture;
  fixture.users = 50;
  fixture.service_password = kServicePassword;
  fixture.computers = 0;
  absl::StatusOr<std::unique_ptr<SlapdServer>> slapd =
      SlapdServer::Start(MakeAdDirectory(fixture).ldif, slapd_options);
  ASSERT_TRUE(slapd.ok()) << slapd.status();
  const PasswordFile password(kServicePassword);
  LdapExportOptions options = AdOptions(**slapd, password.path());
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [](const LdifRecord&) {});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, 0u);

  const AttributeMapping mapping =
      AttributeMapping::ForPreset(Preset::kActiveDirectory);
  const std::string hint = NoEntriesHint(options, mapping);
  EXPECT_THAT(hint, StartsWith(absl::StrCat("the search of base DN(s) \"",
                                            kSuffix, "\" on ", (*slapd)->uri(),
                                            " with filter \"", options.filter,
                                            "\" returned no entry: ")));
  EXPECT_THAT(hint, HasSubstr("\"computer\""));
  const std::string flag = "--filter='";
  const size_t f = hint.find(flag);
  ASSERT_NE(f, std::string::npos) << hint;
  options.filter =
      hint.substr(f + flag.size(), hint.size() - f - flag.size() - 1);
  EXPECT_THAT(options.filter, Not(HasSubstr("computer")));
  stats = ExportLdap(options, [](const LdifRecord&) {});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->entries, 50u);
}

TEST(LdapExportFailureTest, ServerKilledMidExportIsAnError) {
  std::unique_ptr<SlapdServer> slapd = StartSmall(1500);
  ASSERT_NE(slapd, nullptr);
  const PasswordFile password(kServicePassword);
  const std::string& password_file = password.path();
  LdapExportOptions options = AdOptions(*slapd, password_file);
  options.page_size = 100;
  uint64_t sunk = 0;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [&](const LdifRecord&) {
        if (++sunk == 100) {  // the first page is in: kill the server
          slapd->Signal(SIGKILL);
          while (slapd->running()) absl::SleepFor(absl::Milliseconds(5));
        }
      });
  ASSERT_FALSE(stats.ok()) << "a truncated export looked like success after "
                           << sunk << " entries";
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable)
      << stats.status();
  EXPECT_THAT(Message(stats.status()),
              StartsWith(absl::StrCat("LDAP search of \"", kSuffix, "\" on ",
                                      slapd->uri(), " failed on page ")));
  EXPECT_THAT(Message(stats.status()),
              HasSubstr("Can't contact LDAP server (-1)"));
  EXPECT_LT(sunk, 1500u);
  ExpectNoSecrets(stats.status());
}

TEST(LdapExportFailureTest, ServerStalledMidExportTimesOut) {
  std::unique_ptr<SlapdServer> slapd = StartSmall(1000);
  ASSERT_NE(slapd, nullptr);
  const PasswordFile password(kServicePassword);
  const std::string& password_file = password.path();
  LdapExportOptions options = AdOptions(*slapd, password_file);
  options.page_size = 100;
  options.timeout = absl::Seconds(1);
  uint64_t sunk = 0;
  const absl::Time start = absl::Now();
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [&](const LdifRecord&) {
        if (++sunk == 100) slapd->Signal(SIGSTOP);
      });
  const absl::Duration took = absl::Now() - start;
  slapd->Signal(SIGCONT);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDeadlineExceeded)
      << stats.status();
  EXPECT_THAT(Message(stats.status()),
              HasSubstr("no complete answer within 1s"));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST(LdapExportFailureTest, UnreachablePortCannotContact) {
  absl::StatusOr<int> port = ::rcptguard::testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  const PasswordFile password(kServicePassword);
  const std::string& password_file = password.path();
  LdapExportOptions options;
  options.uri = absl::StrCat("ldap://127.0.0.1:", *port, "/");
  options.bind_dn = kServiceDn;
  options.password_file = password_file;
  options.base_dns = {kSuffix};
  options.filter = "(mail=*)";
  options.attributes = {"mail"};
  options.timeout = absl::Seconds(2);
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [](const LdifRecord&) {});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(
      Message(stats.status()),
      StartsWith(absl::StrCat("LDAP connect to ", options.uri,
                              " failed: Can't contact LDAP server (-1)")));
  ExpectNoSecrets(stats.status());
}

TEST(LdapExportFailureTest, ServerThatNeverAnswersTimesOut) {
  // A listening socket nobody accepts from: TCP connects, LDAP never answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const PasswordFile password(kServicePassword);
  const std::string& password_file = password.path();
  LdapExportOptions options;
  options.uri = absl::StrCat("ldap://127.0.0.1:", ntohs(addr.sin_port), "/");
  options.bind_dn = kServiceDn;
  options.password_file = password_file;
  options.base_dns = {kSuffix};
  options.filter = "(mail=*)";
  options.attributes = {"mail"};
  options.timeout = absl::Seconds(1);
  const absl::Time start = absl::Now();
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [](const LdifRecord&) {});
  const absl::Duration took = absl::Now() - start;
  ::close(fd);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDeadlineExceeded)
      << stats.status();
  EXPECT_THAT(Message(stats.status()),
              StartsWith(absl::StrCat("LDAP bind to ", options.uri, " as \"",
                                      kServiceDn, "\" failed: ")));
  EXPECT_LT(took, absl::Seconds(5));
  ExpectNoSecrets(stats.status());
}

// --- TLS (a slapd with a self-signed certificate) -------------------------

class TlsExportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cert_dir_ = new std::string(MakeTempDir("rg-ldap-tls"));
    absl::StatusOr<::rcptguard::testing::TlsFiles> server =
        ::rcptguard::testing::MakeSelfSignedCertificate(*cert_dir_);
    absl::StatusOr<::rcptguard::testing::TlsFiles> other =
        ::rcptguard::testing::MakeSelfSignedCertificate(*cert_dir_, "other");
    if (!server.ok() || !other.ok()) {
      setup_error_ = new std::string(
          Message(server.ok() ? other.status() : server.status()));
      return;
    }
    server_ca_ = new std::string(server->certificate_file);
    other_ca_ = new std::string(other->certificate_file);
    SlapdOptions options;
    options.tls_certificate_file = server->certificate_file;
    options.tls_key_file = server->key_file;
    absl::StatusOr<std::unique_ptr<SlapdServer>> slapd =
        SlapdServer::Start(MakeAdFixture(50).ldif, options);
    if (!slapd.ok()) {
      setup_error_ = new std::string(Message(slapd.status()));
      return;
    }
    slapd_ = slapd->release();
    password_ = new PasswordFile(kServicePassword);
  }
  static void TearDownTestSuite() {
    delete slapd_;
    slapd_ = nullptr;
    delete password_;
    password_ = nullptr;
    std::error_code ec;
    if (cert_dir_ != nullptr) std::filesystem::remove_all(*cert_dir_, ec);
    for (std::string** s :
         {&cert_dir_, &server_ca_, &other_ca_, &setup_error_}) {
      delete *s;
      *s = nullptr;
    }
  }
  void SetUp() override {
    ASSERT_EQ(setup_error_, nullptr) << *setup_error_;
    ASSERT_NE(slapd_, nullptr);
  }
  static LdapExportOptions Options(const std::string& uri, bool start_tls,
                                   const std::string& ca_file) {
    LdapExportOptions o = AdOptions(*slapd_, password_->path());
    o.uri = uri;
    o.start_tls = start_tls;
    o.ca_file = ca_file;
    return o;
  }

  static SlapdServer* slapd_;
  static PasswordFile* password_;
  static std::string* cert_dir_;
  static std::string* server_ca_;
  static std::string* other_ca_;
  static std::string* setup_error_;
};
SlapdServer* TlsExportTest::slapd_ = nullptr;
PasswordFile* TlsExportTest::password_ = nullptr;
std::string* TlsExportTest::cert_dir_ = nullptr;
std::string* TlsExportTest::server_ca_ = nullptr;
std::string* TlsExportTest::other_ca_ = nullptr;
std::string* TlsExportTest::setup_error_ = nullptr;

// 50 users, 240 resource mailboxes, 100 mail users, 200 contacts, 180
// groups / dynamic groups / public folders.
constexpr uint64_t kSmallFixtureEntries = 50 + 240 + 100 + 200 + 180;

TEST_F(TlsExportTest, StartTlsWithTrustedCa) {
  absl::StatusOr<LdapExportStats> stats = ExportLdap(
      Options(slapd_->uri(), true, *server_ca_), [](const LdifRecord&) {});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, kSmallFixtureEntries);
}

TEST_F(TlsExportTest, LdapsWithTrustedCa) {
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(Options(slapd_->ldaps_uri(), false, *server_ca_),
                 [](const LdifRecord&) {});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, kSmallFixtureEntries);
}

TEST_F(TlsExportTest, StartTlsWithUntrustedCertificateFails) {
  bool called = false;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(Options(slapd_->uri(), true, *other_ca_),
                 [&](const LdifRecord&) { called = true; });
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable)
      << stats.status();
  EXPECT_THAT(
      Message(stats.status()),
      StartsWith(absl::StrCat(
          "LDAP StartTLS on ", slapd_->uri(),
          " failed (refusing to continue without TLS): Connect error (-11)")));
  EXPECT_THAT(Message(stats.status()),
              HasSubstr("certificate verification failed"));
  EXPECT_FALSE(called);
  ExpectNoSecrets(stats.status());
}

TEST_F(TlsExportTest, LdapsWithUntrustedCertificateFails) {
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(Options(slapd_->ldaps_uri(), false, *other_ca_),
                 [](const LdifRecord&) {});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable)
      << stats.status();
  EXPECT_THAT(
      Message(stats.status()),
      StartsWith(absl::StrCat("LDAP connect to ", slapd_->ldaps_uri(),
                              " failed: Can't contact LDAP server (-1)")));
  EXPECT_THAT(Message(stats.status()),
              HasSubstr("certificate verification failed"));
  ExpectNoSecrets(stats.status());
}

TEST_F(TlsExportTest, InsecureSkipVerifyConnectsAnyway) {
  LdapExportOptions options = Options(slapd_->ldaps_uri(), false, *other_ca_);
  options.tls_insecure_skip_verify = true;
  absl::StatusOr<LdapExportStats> stats =
      ExportLdap(options, [](const LdifRecord&) {});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, kSmallFixtureEntries);
}

TEST_F(TlsExportTest, MissingCaFileIsReported) {
  const std::string missing = *cert_dir_ + "/absent.pem";
  absl::StatusOr<LdapExportStats> stats = ExportLdap(
      Options(slapd_->ldaps_uri(), false, missing), [](const LdifRecord&) {});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Message(stats.status()),
            absl::StrCat("cannot read TLS CA file \"", missing,
                         "\": No such file or directory"));
}

// --- options and defaults --------------------------------------------------

TEST(LdapExportOptionsTest, NonsenseOptionsAreInvalidArgument) {
  LdapExportOptions good;
  good.uri = "ldap://127.0.0.1:1/";
  good.base_dns = {kSuffix};
  good.filter = "(mail=*)";
  good.attributes = {"mail"};
  struct Case {
    const char* name;
    void (*mutate)(LdapExportOptions*);
    const char* message_prefix;
  };
  const Case cases[] = {
      {"scheme", [](LdapExportOptions* o) { o->uri = "http://dc1/"; },
       "LDAP URI \"http://dc1/\" must start with ldap:// or ldaps://"},
      {"two servers",
       [](LdapExportOptions* o) { o->uri = "ldap://a/ ldap://b/"; },
       "LDAP URI \"ldap://a/ ldap://b/\" must name exactly one server"},
      {"starttls on ldaps",
       [](LdapExportOptions* o) {
         o->uri = "ldaps://dc1/", o->start_tls = true;
       },
       "start_tls cannot be combined with an ldaps:// URI"},
      {"ca without tls",
       [](LdapExportOptions* o) {
         o->ca_file = "/etc/ssl/certs/ca-certificates.crt";
       },
       "ca_file is set but ldap://127.0.0.1:1/ uses no TLS"},
      {"insecure without tls",
       [](LdapExportOptions* o) { o->tls_insecure_skip_verify = true; },
       "tls_insecure_skip_verify is set but"},
      {"dn without password", [](LdapExportOptions* o) { o->bind_dn = "cn=x"; },
       "bind_dn \"cn=x\" needs password_file"},
      {"password without dn",
       [](LdapExportOptions* o) { o->password_file = "/nonexistent"; },
       "password_file is set but bind_dn is empty"},
      {"no base", [](LdapExportOptions* o) { o->base_dns.clear(); },
       "no base DN to search"},
      {"bad base", [](LdapExportOptions* o) { o->base_dns = {"not a dn"}; },
       "base DN \"not a dn\" is not a valid DN"},
      {"no filter", [](LdapExportOptions* o) { o->filter.clear(); },
       "empty LDAP search filter"},
      {"no attributes", [](LdapExportOptions* o) { o->attributes.clear(); },
       "no attributes to request"},
      {"page size", [](LdapExportOptions* o) { o->page_size = 0; },
       "page_size must be positive"},
      {"timeout",
       [](LdapExportOptions* o) { o->timeout = absl::ZeroDuration(); },
       "timeout must be positive"},
  };
  for (const Case& c : cases) {
    LdapExportOptions options = good;
    c.mutate(&options);
    absl::StatusOr<LdapExportStats> stats =
        ExportLdap(options, [](const LdifRecord&) {});
    ASSERT_FALSE(stats.ok()) << c.name;
    EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name;
    EXPECT_THAT(Message(stats.status()), StartsWith(c.message_prefix))
        << c.name;
  }
}

TEST(LdapExportDefaultsTest, ActiveDirectoryPreset) {
  const AttributeMapping ad =
      AttributeMapping::ForPreset(Preset::kActiveDirectory);
  EXPECT_EQ(
      DefaultFilter(ad),
      "(&(|(objectClass=user)(objectClass=contact)(objectClass=group)"
      "(objectClass=msExchDynamicDistributionList)(objectClass=publicFolder))"
      "(|(mail=*)(proxyAddresses=*))(!(objectClass=computer)))");
  EXPECT_THAT(RequestedAttributes(ad),
              ::testing::ElementsAre("mail", "proxyAddresses", "objectClass",
                                     "userAccountControl",
                                     "msExchRecipientTypeDetails"));
}

TEST(LdapExportDefaultsTest, OpenLdapPreset) {
  const AttributeMapping openldap =
      AttributeMapping::ForPreset(Preset::kOpenLdap);
  EXPECT_EQ(DefaultFilter(openldap),
            "(|(mail=*)(mailAlternateAddress=*)(mailLocalAddress=*))");
  EXPECT_THAT(RequestedAttributes(openldap),
              ::testing::ElementsAre("mail", "mailAlternateAddress",
                                     "mailLocalAddress", "objectClass"));
}

TEST(LdapExportDefaultsTest, ObjectClassValuesAreEscaped) {
  AttributeMapping custom;
  custom.address_attributes = {"mail"};
  custom.object_classes = {"odd(class)*"};
  EXPECT_EQ(DefaultFilter(custom),
            "(&(objectClass=odd\\28class\\29\\2a)(mail=*))");
}

}  // namespace
}  // namespace rcptguard::ldap
