#include "server/service/directory_loader.h"

#include <sys/stat.h>

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::service {
namespace {

using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::WriteFile;
using ::testing::HasSubstr;

constexpr char kLdif[] = R"(version: 1

dn: CN=Alice,OU=Users,DC=example,DC=com
objectClass: user
userAccountControl: 512
proxyAddresses: SMTP:alice@example.com
proxyAddresses: smtp:a.smith@example.com
proxyAddresses: smtp:alice@elsewhere.net
proxyAddresses: X500:/o=Org/cn=alice

dn: CN=Former,OU=Users,DC=example,DC=com
objectClass: user
userAccountControl: 514
msExchRecipientTypeDetails: 1
mail: former@example.com

dn: CN=Shared,OU=Users,DC=example,DC=com
objectClass: user
userAccountControl: 514
msExchRecipientTypeDetails: 4
mail: info@example.com

dn: CN=Broken,OU=Users,DC=example,DC=com
objectClass: user
mail: broken..dots@example.com
)";

v1::ServerConfig ConfigFor(const std::string& ldif_path) {
  v1::ServerConfig config;
  v1::Domain* d = config.add_domains();
  d->set_name("example.com");
  config.mutable_directory()->add_ldif_files(ldif_path);
  config.mutable_directory()->set_preset("ad");
  return config;
}

TEST(DirectoryLoaderTest, LoadsLdifWithStatistics) {
  const std::string dir = MakeTempDir("rg-loader");
  ASSERT_TRUE(WriteFile(dir + "/a.ldif", kLdif).ok());
  auto loaded = LoadDirectoryFromLdif(ConfigFor(dir + "/a.ldif"),
                                      directory::SipKey{7, 9});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const directory::Directory& d = *loaded->directory;
  EXPECT_EQ(d.Lookup("alice@example.com").status,
            directory::LookupStatus::kValid);
  EXPECT_EQ(d.Lookup("A.Smith@example.com").status,
            directory::LookupStatus::kValid);
  EXPECT_EQ(d.Lookup("info@example.com").status,
            directory::LookupStatus::kValid);
  EXPECT_EQ(d.Lookup("former@example.com").status,
            directory::LookupStatus::kUnknown);
  EXPECT_EQ(d.address_count(), 3u);
  EXPECT_EQ(loaded->stats.records(), 4u);
  EXPECT_EQ(loaded->stats.disabled_entries(), 1u);
  EXPECT_EQ(loaded->stats.addresses_added(), 3u);
  EXPECT_EQ(loaded->stats.addresses_not_served(), 1u);
  EXPECT_EQ(loaded->stats.addresses_malformed(), 1u);
  EXPECT_THAT(loaded->first_malformed, HasSubstr("a.ldif"));
  EXPECT_THAT(d.info().source, HasSubstr("a.ldif"));
  EXPECT_FALSE(d.info().version.empty());
}

TEST(DirectoryLoaderTest, AnEmptyExportLoadsEmptyForTheGuardsToJudge) {
  const std::string dir = MakeTempDir("rg-loader");
  ASSERT_TRUE(WriteFile(dir + "/empty.ldif", "version: 1\n").ok());
  auto loaded = LoadDirectoryFromLdif(ConfigFor(dir + "/empty.ldif"),
                                      directory::SipKey{7, 9});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->directory->address_count(), 0u);
}

TEST(DirectoryLoaderTest, LdifSyntaxErrorNamesFileAndLine) {
  const std::string dir = MakeTempDir("rg-loader");
  ASSERT_TRUE(
      WriteFile(dir + "/bad.ldif", "dn: cn=x\nmail alice@example.com\n").ok());
  auto loaded = LoadDirectoryFromLdif(ConfigFor(dir + "/bad.ldif"),
                                      directory::SipKey{7, 9});
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()),
              HasSubstr(dir + "/bad.ldif:2:"));
}

TEST(DirectoryLoaderTest, MissingFileIsNotFound) {
  auto loaded = LoadDirectoryFromLdif(ConfigFor("/nonexistent/x.ldif"),
                                      directory::SipKey{7, 9});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
}

TEST(FingerprintKeyTest, ReadsRawAndHexKeys) {
  const std::string dir = MakeTempDir("rg-key");
  v1::ServerConfig config;
  config.set_fingerprint_key_file(dir + "/raw.key");
  ASSERT_TRUE(WriteFile(dir + "/raw.key",
                        std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"
                                    "\x0a\x0b\x0c\x0d\x0e\x0f",
                                    16))
                  .ok());
  auto raw = LoadFingerprintKey(config);
  ASSERT_TRUE(raw.ok()) << raw.status();

  config.set_fingerprint_key_file(dir + "/hex.key");
  ASSERT_TRUE(
      WriteFile(dir + "/hex.key", "000102030405060708090a0b0c0d0e0f\n").ok());
  auto hex = LoadFingerprintKey(config);
  ASSERT_TRUE(hex.ok()) << hex.status();
  EXPECT_EQ(raw->k0, hex->k0);
  EXPECT_EQ(raw->k1, hex->k1);

  config.set_fingerprint_key_file(dir + "/short.key");
  ASSERT_TRUE(WriteFile(dir + "/short.key", "abc").ok());
  auto bad = LoadFingerprintKey(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("expected 16 raw bytes or 32 hex digits, found 3"));
}

// Issue 19: hostile files where the config points. Each fails at once,
// naming the file, instead of blocking or reading without end.
TEST(DirectoryLoaderTest, FifoAtTheSnapshotPathFailsPromptly) {
  const std::string dir = MakeTempDir("rg-loader-fifo");
  const std::string path = dir + "/dir.rgs";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  v1::ServerConfig config;
  config.add_domains()->set_name("example.com");
  config.mutable_directory()->set_snapshot_file(path);
  const absl::Time start = absl::Now();
  auto loaded = LoadDirectoryFromSources(config, directory::SipKey{7, 9});
  EXPECT_EQ(loaded.status(),
            absl::InvalidArgumentError("snapshot " + path +
                                       ": is a FIFO, not a regular file"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(DirectoryLoaderTest, FifoLdifFailsPromptly) {
  const std::string dir = MakeTempDir("rg-loader-fifo");
  const std::string path = dir + "/a.ldif";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const absl::Time start = absl::Now();
  auto loaded = LoadDirectoryFromLdif(ConfigFor(path), directory::SipKey{7, 9});
  EXPECT_EQ(loaded.status(),
            absl::InvalidArgumentError("LDIF file " + path +
                                       ": is a FIFO, not a regular file"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(FingerprintKeyTest, DevicesFifosAndLargeFilesAreRefused) {
  const std::string dir = MakeTempDir("rg-key");
  v1::ServerConfig config;
  config.set_fingerprint_key_file("/dev/zero");
  EXPECT_EQ(LoadFingerprintKey(config).status(),
            absl::InvalidArgumentError(
                "fingerprint key file /dev/zero: is a character device, not a "
                "regular file"));
  const std::string fifo = dir + "/fifo.key";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  config.set_fingerprint_key_file(fifo);
  EXPECT_EQ(LoadFingerprintKey(config).status(),
            absl::InvalidArgumentError("fingerprint key file " + fifo +
                                       ": is a FIFO, not a regular file"));
  const std::string big = dir + "/big.key";
  ASSERT_TRUE(WriteFile(big, std::string((1 << 20) + 1, 'a')).ok());
  config.set_fingerprint_key_file(big);
  EXPECT_EQ(LoadFingerprintKey(config).status(),
            absl::InvalidArgumentError(
                "fingerprint key file " + big +
                ": file has 1048577 bytes, more than the 1048576 allowed"));
}

TEST(FingerprintKeyTest, NoFileMakesRandomKeys) {
  v1::ServerConfig config;
  auto a = LoadFingerprintKey(config);
  auto b = LoadFingerprintKey(config);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->k0 == b->k0 && a->k1 == b->k1);
}

}  // namespace
}  // namespace rcptguard::service
