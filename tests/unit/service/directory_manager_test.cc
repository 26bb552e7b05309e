// DirectoryManager: snapshot reloads, every guard, every bad-snapshot
// failure mode (each with its reason code and message), the force flag file,
// watching, and that a refused or failed candidate never replaces the
// served directory.
#include "server/service/directory_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/snapshot/snapshot_file.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::service {
namespace {

using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::WriteFile;
using ::testing::HasSubstr;

constexpr char kKeyHex[] = "000102030405060708090a0b0c0d0e0f";

directory::SipKey Key() {
  return *directory::SipKey::FromBytes(std::string(
      "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16));
}

// Writes a snapshot with `com` addresses in example.com and `org` in
// example.org.
void WriteDirectory(const std::string& path, const std::string& version,
                    int com, int org, const directory::SipKey& key = Key()) {
  std::vector<directory::DomainPolicy> domains(2);
  domains[0].name = "example.com";
  domains[1].name = "example.org";
  auto builder = directory::DirectoryBuilder::Create(key, domains);
  ASSERT_TRUE(builder.ok());
  for (int i = 0; i < com; ++i) {
    builder->AddAddress(absl::StrCat("user", i, "@example.com"));
  }
  for (int i = 0; i < org; ++i) {
    builder->AddAddress(absl::StrCat("member", i, "@example.org"));
  }
  directory::DirectoryInfo info;
  info.version = version;
  auto dir = std::move(*builder).Build(info);
  ASSERT_TRUE(dir.ok());
  snapshot::SnapshotMetadata meta;
  meta.version = version;
  meta.source = "test";
  ASSERT_TRUE(snapshot::WriteSnapshot(**dir, meta, path).ok());
}

class DirectoryManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("rg-manager");
    snapshot_ = dir_ + "/directory.rgs";
    ASSERT_TRUE(WriteFile(dir_ + "/key", kKeyHex).ok());
    config_.add_domains()->set_name("example.com");
    config_.add_domains()->set_name("example.org");
    config_.set_fingerprint_key_file(dir_ + "/key");
    config_.mutable_directory()->set_snapshot_file(snapshot_);
    config_.mutable_directory()->set_max_shrink(0.10);
    config_.mutable_directory()->set_force_reload_file(dir_ + "/force");
    config_.mutable_directory()->set_watch_interval("0s");
  }

  std::unique_ptr<DirectoryManager> Manager() {
    return std::make_unique<DirectoryManager>(config_, Key());
  }

  std::string Served(DirectoryManager& m) {
    auto d = m.handle()->Get();
    return d == nullptr ? "none" : d->info().version;
  }

  // Loads v1 (1000 + 100 addresses), then tries `candidate`; expects a
  // refusal or failure with `reason` and `message`, v1 still served.
  void ExpectRejected(const std::function<void(const std::string&)>& candidate,
                      const std::string& reason, const std::string& message) {
    WriteDirectory(snapshot_, "v1", 1000, 100);
    auto m = Manager();
    ASSERT_TRUE(m->Reload(false, "start").ok());
    candidate(snapshot_);
    absl::StatusOr<ReloadResult> r = m->Reload(false, "admin");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(message));
    EXPECT_EQ(Served(*m), "v1");
    EXPECT_EQ(m->handle()->Get()->Lookup("user5@example.com").status,
              directory::LookupStatus::kValid);
    v1::GetStatusResponse status;
    m->FillStatus(&status);
    EXPECT_EQ(status.last_reload().reason(), reason);
    EXPECT_THAT(status.last_reload().message(), HasSubstr(message));
    EXPECT_EQ(status.directory_version(), "v1");
  }

  std::string dir_, snapshot_;
  v1::ServerConfig config_;
};

TEST_F(DirectoryManagerTest, LoadsAndReloadsSnapshots) {
  WriteDirectory(snapshot_, "v1", 100, 10);
  auto m = Manager();
  auto r = m->Reload(false, "start");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, ReloadResult::Kind::kLoaded);
  EXPECT_EQ(Served(*m), "v1");
  WriteDirectory(snapshot_, "v2", 105, 10);
  r = m->Reload(false, "admin");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, ReloadResult::Kind::kLoaded);
  EXPECT_EQ(Served(*m), "v2");
  EXPECT_EQ(m->handle()->Get()->Lookup("user104@example.com").status,
            directory::LookupStatus::kValid);
  // The same file again changes nothing.
  r = m->Reload(false, "sighup");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ReloadResult::Kind::kUnchanged);
}

TEST_F(DirectoryManagerTest, EmptySnapshotIsRefusedEvenForced) {
  WriteDirectory(snapshot_, "v1", 100, 10);
  auto m = Manager();
  ASSERT_TRUE(m->Reload(false, "start").ok());
  WriteDirectory(snapshot_, "v-empty", 0, 0);
  auto r = m->Reload(/*force=*/true, "admin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(),
            "candidate directory v-empty from test has no address in a "
            "served domain: refusing to serve an empty directory");
  EXPECT_EQ(Served(*m), "v1");
}

TEST_F(DirectoryManagerTest, FirstLoadOfAnEmptySnapshotIsRefused) {
  WriteDirectory(snapshot_, "v-empty", 0, 0);
  auto m = Manager();
  EXPECT_FALSE(m->Reload(false, "start").ok());
  EXPECT_EQ(m->handle()->Get(), nullptr);
}

TEST_F(DirectoryManagerTest, ShrunkByHalfIsRefused) {
  ExpectRejected(
      [](const std::string& p) { WriteDirectory(p, "v-half", 450, 100); },
      "shrunk",
      "candidate directory v-half has 550 addresses, 50.0% fewer than the "
      "served 1100 (limit 10.0%); refused unless forced");
}

TEST_F(DirectoryManagerTest, MissingDomainIsRefused) {
  ExpectRejected(
      [](const std::string& p) { WriteDirectory(p, "v-noorg", 1100, 0); },
      "missing_domain",
      "candidate directory v-noorg has no address for served domain(s) "
      "example.org that directory v1 serves; refused unless forced");
}

TEST_F(DirectoryManagerTest, TruncatedFileFails) {
  ExpectRejected(
      [](const std::string& p) {
        std::string bytes = ReadFile(p);
        ASSERT_TRUE(WriteFile(p, bytes.substr(0, bytes.size() / 2)).ok());
      },
      // Its own reason (issue 17), not "checksum".
      "truncated", "truncated");
}

TEST_F(DirectoryManagerTest, FlippedByteFails) {
  ExpectRejected(
      [](const std::string& p) {
        std::string bytes = ReadFile(p);
        bytes[bytes.size() / 2] ^= 0x40;
        ASSERT_TRUE(WriteFile(p, bytes).ok());
      },
      "checksum", "checksum mismatch");
}

TEST_F(DirectoryManagerTest, WrongKeyFails) {
  ExpectRejected(
      [](const std::string& p) {
        WriteDirectory(p, "v-otherkey", 1000, 100, directory::SipKey{5, 6});
      },
      "key", "key id");
}

TEST_F(DirectoryManagerTest, WrongMagicFails) {
  ExpectRejected(
      [](const std::string& p) {
        std::string bytes = ReadFile(p);
        bytes[0] = 'X';
        ASSERT_TRUE(WriteFile(p, bytes).ok());
      },
      "format", "not an rcptguard snapshot");
}

TEST_F(DirectoryManagerTest, FutureVersionFails) {
  ExpectRejected(
      [](const std::string& p) {
        std::string bytes = ReadFile(p);
        bytes[8] = 9;  // major format version, little-endian at offset 8
        ASSERT_TRUE(WriteFile(p, bytes).ok());
      },
      "format", "format version 9 is newer than this server supports (1)");
}

TEST_F(DirectoryManagerTest, EmptyFileFails) {
  ExpectRejected(
      [](const std::string& p) { ASSERT_TRUE(WriteFile(p, "").ok()); }, "empty",
      "file is empty");
}

TEST_F(DirectoryManagerTest, MissingFileFails) {
  ExpectRejected([](const std::string& p) { ::unlink(p.c_str()); }, "io",
                 "directory.rgs");
}

TEST_F(DirectoryManagerTest, ForceLoadsPastTheShrinkGuard) {
  WriteDirectory(snapshot_, "v1", 1000, 100);
  auto m = Manager();
  ASSERT_TRUE(m->Reload(false, "start").ok());
  WriteDirectory(snapshot_, "v-half", 450, 100);
  ASSERT_FALSE(m->Reload(false, "admin").ok());
  auto r = m->Reload(/*force=*/true, "admin");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Served(*m), "v-half");
}

TEST_F(DirectoryManagerTest, ForceFileLoadsOnceAndIsRemoved) {
  WriteDirectory(snapshot_, "v1", 1000, 100);
  auto m = Manager();
  ASSERT_TRUE(m->Reload(false, "start").ok());
  WriteDirectory(snapshot_, "v-noorg", 1100, 0);
  ASSERT_TRUE(WriteFile(dir_ + "/force", "").ok());
  auto r = m->Reload(false, "sighup");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Served(*m), "v-noorg");
  EXPECT_NE(::access((dir_ + "/force").c_str(), F_OK), 0);
  // One-shot: the next shrinking candidate is judged again.
  WriteDirectory(snapshot_, "v-tiny", 10, 0);
  EXPECT_FALSE(m->Reload(false, "sighup").ok());
  EXPECT_EQ(Served(*m), "v-noorg");
}

TEST_F(DirectoryManagerTest, WatcherPicksUpANewSnapshot) {
  config_.mutable_directory()->set_watch_interval("50ms");
  WriteDirectory(snapshot_, "v1", 100, 10);
  auto m = Manager();
  ASSERT_TRUE(m->Reload(false, "start").ok());
  m->StartMaintenance();
  WriteDirectory(snapshot_, "v2", 101, 10);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Served(*m) != "v2" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Served(*m), "v2");
  v1::GetStatusResponse status;
  m->FillStatus(&status);
  EXPECT_EQ(status.last_reload().trigger(), "watch");
  m->StopMaintenance();
}

TEST_F(DirectoryManagerTest, SnapshotReplacedBeforeTheWatcherStartsIsLoaded) {
  config_.mutable_directory()->set_watch_interval("50ms");
  WriteDirectory(snapshot_, "v1", 100, 10);
  auto m = Manager();
  ASSERT_TRUE(m->Reload(false, "start").ok());
  // Replaced after the first load and before the watcher runs: the watcher
  // compares with what the load read, not with what it finds at start.
  WriteDirectory(snapshot_, "v2", 101, 10);
  m->StartMaintenance();
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Served(*m) != "v2" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Served(*m), "v2");
  m->StopMaintenance();
}

TEST_F(DirectoryManagerTest, ObserverSeesEveryOutcome) {
  WriteDirectory(snapshot_, "v1", 100, 10);
  std::vector<std::string> seen;
  DirectoryManagerOptions options;
  options.observer = [&seen](const ReloadResult& r,
                             const directory::Directory* served) {
    seen.push_back(absl::StrCat(static_cast<int>(r.kind), ":", r.reason, ":",
                                served ? served->info().version : "none"));
  };
  auto m =
      std::make_unique<DirectoryManager>(config_, Key(), std::move(options));
  ASSERT_TRUE(m->Reload(false, "start").ok());
  WriteDirectory(snapshot_, "v-empty", 0, 0);
  ASSERT_FALSE(m->Reload(false, "admin").ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("0::v1", "2:empty:v1"));
}

// Issue 17: with an LDIF source the directory's age is the export's (its
// file's modification time), so re-reading an old file on SIGHUP does not
// make a stale export fresh; a new export (a newer file) does.
TEST(DirectoryManagerLdifTest, AgeComesFromTheFileNotTheReload) {
  const std::string dir = MakeTempDir("rg-manager-ldif");
  const std::string ldif = dir + "/export.ldif";
  ASSERT_TRUE(WriteFile(ldif,
                        "dn: CN=A,DC=example,DC=com\nobjectClass: user\n"
                        "mail: alice@example.com\n")
                  .ok());
  const absl::Time exported = absl::Now() - absl::Hours(48);
  const struct timespec times[2] = {absl::ToTimespec(exported),
                                    absl::ToTimespec(exported)};
  ASSERT_EQ(::utimensat(AT_FDCWD, ldif.c_str(), times, 0), 0);
  v1::ServerConfig config;
  config.add_domains()->set_name("example.com");
  config.mutable_directory()->add_ldif_files(ldif);
  config.mutable_directory()->set_preset("ad");
  config.mutable_directory()->set_stale_after("24h");
  DirectoryManager m(config, Key());
  ASSERT_TRUE(m.Reload(false, "start").ok());
  for (const char* trigger : {"start", "sighup"}) {
    if (std::string(trigger) == "sighup") {
      ASSERT_TRUE(m.Reload(false, "sighup").ok());
    }
    v1::GetStatusResponse status;
    m.FillStatus(&status);
    EXPECT_TRUE(status.stale()) << trigger;
    EXPECT_NEAR(status.directory_age_seconds(), 48 * 3600, 60) << trigger;
    EXPECT_EQ(m.handle()->Get()->info().built_at, exported) << trigger;
    EXPECT_EQ(status.directory_version(),
              absl::StrCat("ldif-", absl::FormatTime("%Y%m%dT%H%M%SZ", exported,
                                                     absl::UTCTimeZone())));
  }
  // A new export: fresh again.
  ASSERT_EQ(::utimensat(AT_FDCWD, ldif.c_str(), nullptr, 0), 0);
  ASSERT_TRUE(m.Reload(false, "sighup").ok());
  v1::GetStatusResponse status;
  m.FillStatus(&status);
  EXPECT_FALSE(status.stale());
  EXPECT_LT(status.directory_age_seconds(), 60);
}

// Issue 17: addresses written with an alias domain are counted per alias,
// logged, and shown in status; they are folded into the target as before.
TEST(DirectoryManagerLdifTest, AliasDomainAddressesAreCountedAndShown) {
  const std::string dir = MakeTempDir("rg-manager-alias");
  const std::string ldif = dir + "/export.ldif";
  ASSERT_TRUE(WriteFile(ldif,
                        "dn: CN=A,DC=example,DC=com\nobjectClass: user\n"
                        "proxyAddresses: SMTP:alice@example.com\n"
                        "proxyAddresses: smtp:alice@mail.example.com\n"
                        "proxyAddresses: smtp:al@Mail.Example.COM\n\n"
                        "dn: CN=B,DC=example,DC=com\nobjectClass: user\n"
                        "proxyAddresses: SMTP:bob@example.com\n"
                        "proxyAddresses: smtp:bob@corp.example.com\n")
                  .ok());
  v1::ServerConfig config;
  v1::Domain* domain = config.add_domains();
  domain->set_name("example.com");
  domain->add_aliases("mail.example.com");
  domain->add_aliases("corp.example.com");
  domain->add_aliases("unused.example.com");
  config.mutable_directory()->add_ldif_files(ldif);
  config.mutable_directory()->set_preset("ad");
  DirectoryManager m(config, Key());
  ASSERT_TRUE(m.Reload(false, "start").ok());
  auto served = m.handle()->Get();
  // alice@mail. and bob@corp. fold into alice@ and bob@ (duplicates);
  // al@mail. is new.
  EXPECT_EQ(served->address_count(), 3u);
  ASSERT_EQ(served->info().alias_domain_addresses.size(), 2u);
  EXPECT_EQ(served->info().alias_domain_addresses[0].alias, "corp.example.com");
  EXPECT_EQ(served->info().alias_domain_addresses[0].target, "example.com");
  EXPECT_EQ(served->info().alias_domain_addresses[0].addresses, 1u);
  EXPECT_EQ(served->info().alias_domain_addresses[1].alias, "mail.example.com");
  EXPECT_EQ(served->info().alias_domain_addresses[1].addresses, 2u);
  v1::GetStatusResponse status;
  m.FillStatus(&status);
  ASSERT_EQ(status.load().alias_domain_addresses_size(), 2);
  EXPECT_EQ(status.load().alias_domain_addresses(1).alias(),
            "mail.example.com");
  EXPECT_EQ(status.load().alias_domain_addresses(1).target(), "example.com");
  EXPECT_EQ(status.load().alias_domain_addresses(1).addresses(), 2u);
  EXPECT_EQ(status.load().addresses_duplicate(), 2u);
}

}  // namespace
}  // namespace rcptguard::service
