#include "server/snapshot/snapshot_file.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/directory/directory.h"
#include "server/directory/fingerprint_set.h"
#include "server/directory/siphash.h"

namespace rcptguard::snapshot {
namespace {

// The reader's error for an empty or truncated file: DataLoss with
// `message`, marked with what SnapshotDamage() reports.
absl::Status Damaged(std::string_view damage, const std::string& message) {
  absl::Status status = absl::DataLossError(message);
  status.SetPayload(ToAbsl(kSnapshotDamagePayload), absl::Cord(ToAbsl(damage)));
  return status;
}

using directory::Directory;
using directory::DirectoryBuilder;
using directory::DirectoryInfo;
using directory::DomainMode;
using directory::DomainPolicy;
using directory::LookupStatus;
using directory::SipKey;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Header offsets (docs/snapshot-format.md), for corrupting files on purpose.
constexpr size_t kOffFormatVersion = 8;
constexpr size_t kOffFileSize = 16;
constexpr size_t kOffDomainCount = 28;
constexpr size_t kOffCreatedAt = 32;
constexpr size_t kOffAddressCount = 48;
constexpr size_t kOffShardBits = 72;
constexpr size_t kOffSlotsOffset = 88;

const SipKey kKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
const absl::Time kCreated =
    absl::FromUnixSeconds(1795000000) + absl::Nanoseconds(123);

uint64_t Load64(const std::string& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, b.data() + at, 8);
  return v;
}
void Store64(std::string& b, size_t at, uint64_t v) {
  std::memcpy(b.data() + at, &v, 8);
}
void Store32(std::string& b, size_t at, uint32_t v) {
  std::memcpy(b.data() + at, &v, 4);
}
// Recomputes the trailer checksum so that a deliberately inconsistent file
// gets past the corruption check to the check under test.
void FixChecksum(std::string& b) {
  Store64(b, b.size() - 8,
          ChecksumOf(std::string_view(b).substr(0, b.size() - 8)));
}
std::string ChecksumMessage(const std::string& path, const std::string& b) {
  return absl::StrFormat(
      "snapshot %s: checksum mismatch: stored 0x%016x, computed 0x%016x (the "
      "file is corrupt)",
      path, Load64(b, b.size() - 8),
      ChecksumOf(std::string_view(b).substr(0, b.size() - 8)));
}

std::vector<DomainPolicy> ExporterDomains() {
  DomainPolicy com;
  com.name = "example.com";
  com.aliases = {"example.net"};
  com.subaddress_delimiters = "+";
  DomainPolicy org;
  org.name = "Example.ORG";  // normalized by the builder
  org.mode = DomainMode::kMonitor;
  org.subaddress_delimiters = "-+";
  return {com, org};
}

std::vector<std::string> Addresses() {
  std::vector<std::string> out;
  for (int i = 0; i < 3000; ++i)
    out.push_back(absl::StrCat("user", i, "@example.com"));
  for (int i = 0; i < 1500; ++i)
    out.push_back(absl::StrCat("Person.", i, "@example.org"));
  for (int i = 0; i < 200; ++i)
    out.push_back(absl::StrCat("alias", i, "@example.net"));
  return out;
}

// Queries whose answers must survive a round trip: members, members through
// the alias and subaddresses, unknowns, unserved and malformed recipients.
std::vector<std::string> Queries() {
  std::vector<std::string> q = Addresses();
  for (int i = 0; i < 300; ++i) {
    q.push_back(absl::StrCat("user", i, "+tag@example.com"));
    q.push_back(absl::StrCat("<USER", i, "@Example.NET>"));
    q.push_back(absl::StrCat("person.", i, "-x@example.org"));
    q.push_back(absl::StrCat("nobody", i, "@example.com"));
    q.push_back(absl::StrCat("alias", i, "@example.com"));
    q.push_back(absl::StrCat("user", i, "@example.edu"));
  }
  q.push_back("postmaster@example.org");
  q.push_back("not an address");
  return q;
}

std::shared_ptr<const Directory> BuildDirectory(
    const std::vector<std::string>& addresses,
    std::vector<DomainPolicy> domains = ExporterDomains()) {
  absl::StatusOr<DirectoryBuilder> builder =
      DirectoryBuilder::Create(kKey, std::move(domains));
  EXPECT_TRUE(builder.ok()) << builder.status();
  for (const std::string& a : addresses) {
    EXPECT_EQ(builder->AddAddress(a), DirectoryBuilder::AddOutcome::kAdded)
        << a;
  }
  DirectoryInfo info;
  info.version = "in-memory";
  absl::StatusOr<std::shared_ptr<const Directory>> dir =
      std::move(*builder).Build(info);
  EXPECT_TRUE(dir.ok()) << dir.status();
  return *dir;
}

SnapshotMetadata Meta() {
  SnapshotMetadata meta;
  meta.source = "ldap://dc1.example.com base=ou=people,dc=example,dc=com";
  meta.version = "2026-11-29T04:00:00Z#42";
  meta.created_at = kCreated;
  return meta;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}
void WriteAllBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

class SnapshotFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = ::testing::TempDir();
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    std::string templ = base + "/snapshot_test.XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // The directory of Addresses() written to `name`; returns the path.
  std::string WriteGood(const std::string& name = "good.rgs") {
    const std::string path = Path(name);
    absl::Status st = WriteSnapshot(*BuildDirectory(Addresses()), Meta(), path);
    EXPECT_TRUE(st.ok()) << st;
    return path;
  }

  // Writes `bytes` to `name` and returns ReadSnapshot's status for it.
  absl::Status ReadBytes(const std::string& name, const std::string& bytes,
                         const SipKey& key = kKey) {
    const std::string path = Path(name);
    WriteAllBytes(path, bytes);
    absl::StatusOr<LoadedSnapshot> loaded =
        ReadSnapshot(path, key, ExporterDomains());
    // The buffer entry point agrees with the file one, message for message.
    absl::StatusOr<LoadedSnapshot> from_buffer =
        ReadSnapshotFromBuffer(path, std::make_shared<const std::string>(bytes),
                               key, ExporterDomains());
    EXPECT_EQ(loaded.status(), from_buffer.status());
    return loaded.status();
  }

  std::string dir_;
};

void ExpectSameAnswers(const Directory& a, const Directory& b) {
  for (const std::string& q : Queries()) {
    const directory::LookupResult ra = a.Lookup(q);
    const directory::LookupResult rb = b.Lookup(q);
    EXPECT_EQ(ra.status, rb.status) << q;
    EXPECT_EQ(ra.domain_index, rb.domain_index) << q;
    EXPECT_EQ(ra.error, rb.error) << q;
  }
}

// ---------------------------------------------------------------------------
// The checksum.

TEST(ChecksumTest, MatchesXxh64ReferenceVectors) {
  // Values printed by `xxhsum -H1` (xxHash 0.8).
  EXPECT_EQ(ChecksumOf(""), 0xef46db3751d8e999ULL);
  EXPECT_EQ(ChecksumOf("a"), 0xd24ec4f1a98c6e5bULL);
  EXPECT_EQ(ChecksumOf("abc"), 0x44bc2cf5ad770999ULL);
  std::string pattern;
  for (int i = 0; i < 1000; ++i)
    pattern.push_back(static_cast<char>(i * 7 % 251));
  EXPECT_EQ(ChecksumOf(pattern.substr(0, 13)), 0x92e7ac00fd9ce667ULL);
  EXPECT_EQ(ChecksumOf(pattern.substr(0, 31)), 0x0f187c62b1e722b7ULL);
  EXPECT_EQ(ChecksumOf(pattern.substr(0, 32)), 0x91b0cb0931a8c629ULL);
  EXPECT_EQ(ChecksumOf(pattern.substr(0, 37)), 0x478890c607390313ULL);
  EXPECT_EQ(ChecksumOf(pattern), 0x023fd2ed1ff957d5ULL);
}

TEST(ChecksumTest, StreamingEqualsOneShotForEverySplit) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  const uint64_t whole = ChecksumOf(data);
  for (size_t chunk : {1, 3, 7, 8, 31, 32, 33, 64, 100, 299}) {
    Checksum sum;
    for (size_t at = 0; at < data.size(); at += chunk) {
      sum.Update(std::string_view(data).substr(at, chunk));
    }
    EXPECT_EQ(sum.Digest(), whole) << chunk;
    EXPECT_EQ(sum.Digest(), whole) << "Digest() must not reset";
  }
}

TEST(ChecksumTest, EverySingleBitFlipChangesIt) {
  std::string data(200, 'x');
  const uint64_t base = ChecksumOf(data);
  for (size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] ^= static_cast<char>(1 << bit);
      EXPECT_NE(ChecksumOf(data), base) << i << ":" << bit;
      data[i] ^= static_cast<char>(1 << bit);
    }
  }
}

// ---------------------------------------------------------------------------
// Round trips.

TEST_F(SnapshotFileTest, RoundTripAnswersEveryQueryTheSame) {
  std::shared_ptr<const Directory> original = BuildDirectory(Addresses());
  const std::string path = Path("dir.rgs");
  ASSERT_TRUE(WriteSnapshot(*original, Meta(), path).ok());

  for (SlotStorage storage :
       {SlotStorage::kHugePageCopy, SlotStorage::kMappedFile}) {
    ReadOptions options;
    options.slot_storage = storage;
    options.loaded_at = absl::FromUnixSeconds(1795000100);
    absl::StatusOr<LoadedSnapshot> loaded =
        ReadSnapshot(path, kKey, ExporterDomains(), options);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    const Directory& dir = *loaded->directory;
    ExpectSameAnswers(*original, dir);
    EXPECT_EQ(dir.address_count(), 4700u);
    EXPECT_EQ(dir.domain_address_count(0), 3200u);
    EXPECT_EQ(dir.domain_address_count(1), 1500u);
    EXPECT_EQ(dir.key_id(), kKey.Id());
    EXPECT_EQ(dir.info().version, "2026-11-29T04:00:00Z#42");
    EXPECT_EQ(dir.info().source,
              "ldap://dc1.example.com base=ou=people,dc=example,dc=com");
    EXPECT_EQ(dir.info().built_at, kCreated);
    EXPECT_EQ(dir.info().loaded_at, absl::FromUnixSeconds(1795000100));
    EXPECT_EQ(dir.fingerprints().all_slots().size(),
              original->fingerprints().all_slots().size());
    EXPECT_THAT(loaded->missing_domains, IsEmpty());

    const SnapshotInfo& info = loaded->info;
    EXPECT_EQ(info.path, path);
    EXPECT_EQ(info.format_version, kFormatVersion);
    EXPECT_EQ(info.minor_version, kMinorVersion);
    EXPECT_EQ(info.created_at, kCreated);
    EXPECT_EQ(info.key_id, kKey.Id());
    EXPECT_EQ(info.address_count, 4700u);
    EXPECT_EQ(info.shard_bits, original->fingerprints().shard_bits());
    ASSERT_EQ(info.domains.size(), 2u);
    EXPECT_EQ(
        info.domains[0],
        (SnapshotDomain{
            "example.com", {"example.net"}, DomainMode::kEnforce, "+", 3200}));
    EXPECT_EQ(
        info.domains[1],
        (SnapshotDomain{"example.org", {}, DomainMode::kMonitor, "-+", 1500}));
    ASSERT_NE(info.FindDomain("example.org"), nullptr);
    EXPECT_EQ(info.FindDomain("example.org")->address_count, 1500u);
    EXPECT_EQ(info.FindDomain("example.net"), nullptr);
  }
}

TEST_F(SnapshotFileTest, ServerConfigDefinesPolicyAndSnapshotTheCounts) {
  const std::string path = WriteGood();
  // The server enforces example.org (the exporter said monitor), drops the
  // alias, adds a delimiter, and serves a domain the snapshot lacks.
  DomainPolicy com;
  com.name = "EXAMPLE.COM";
  com.subaddress_delimiters = "+_";
  com.replies.unknown = "no such user here";
  DomainPolicy org;
  org.name = "example.org";
  DomainPolicy edu;
  edu.name = "example.edu";
  absl::StatusOr<LoadedSnapshot> loaded =
      ReadSnapshot(path, kKey, {edu, com, org});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Directory& dir = *loaded->directory;
  ASSERT_EQ(dir.domains().size(), 3u);
  EXPECT_EQ(dir.domains()[1].name, "example.com");
  EXPECT_EQ(dir.domains()[1].replies.unknown, "no such user here");
  EXPECT_EQ(dir.domains()[2].mode, DomainMode::kEnforce);
  EXPECT_EQ(dir.domain_address_count(0), 0u);
  EXPECT_EQ(dir.domain_address_count(1), 3200u);
  EXPECT_EQ(dir.domain_address_count(2), 1500u);
  EXPECT_THAT(loaded->missing_domains, ElementsAre("example.edu"));
  // The snapshot's own table is kept as written.
  EXPECT_EQ(loaded->info.domains[1].mode, DomainMode::kMonitor);

  EXPECT_EQ(dir.Lookup("user7@example.com").status, LookupStatus::kValid);
  EXPECT_EQ(dir.Lookup("user7_x@example.com").status, LookupStatus::kValid);
  EXPECT_EQ(dir.Lookup("user7@example.edu").status, LookupStatus::kUnknown);
  EXPECT_EQ(dir.Lookup("user7@example.net").status, LookupStatus::kNotServed);
  EXPECT_EQ(dir.Lookup("alias7@example.com").status, LookupStatus::kValid);
}

TEST_F(SnapshotFileTest, InvalidServedDomainsNameTheSnapshot) {
  const std::string path = WriteGood();
  DomainPolicy bad;
  bad.name = "example.com";
  bad.aliases = {"example.com"};
  absl::StatusOr<LoadedSnapshot> loaded = ReadSnapshot(path, kKey, {bad});
  EXPECT_EQ(loaded.status(),
            absl::InvalidArgumentError(
                "snapshot " + path +
                ": served domains: domain \"example.com\": alias "
                "\"example.com\" is a served domain"));
}

TEST_F(SnapshotFileTest, ZeroAddressesReadAsZero) {
  const std::string path = Path("empty-dir.rgs");
  ASSERT_TRUE(WriteSnapshot(*BuildDirectory({}), Meta(), path).ok());
  absl::StatusOr<LoadedSnapshot> loaded =
      ReadSnapshot(path, kKey, ExporterDomains());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->directory->address_count(), 0u);
  EXPECT_EQ(loaded->info.address_count, 0u);
  EXPECT_EQ(loaded->directory->domain_address_count(0), 0u);
  EXPECT_EQ(loaded->directory->domain_address_count(1), 0u);
  EXPECT_EQ(loaded->directory->Lookup("user1@example.com").status,
            LookupStatus::kUnknown);
  EXPECT_EQ(loaded->directory->Lookup("postmaster@example.com").status,
            LookupStatus::kValid);
}

TEST_F(SnapshotFileTest, NoDomainsAtAll) {
  const std::string path = Path("no-domains.rgs");
  ASSERT_TRUE(
      WriteSnapshot(*BuildDirectory({}, {}), SnapshotMetadata{}, path).ok());
  absl::StatusOr<LoadedSnapshot> loaded =
      ReadSnapshot(path, kKey, ExporterDomains());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(loaded->info.domains, IsEmpty());
  EXPECT_THAT(loaded->missing_domains,
              ElementsAre("example.com", "example.org"));
  EXPECT_EQ(loaded->info.source, "");
}

// A directory around a ready set of random fingerprints with 2^shard_bits
// shards, as the benchmark and large exports build them.
std::shared_ptr<const Directory> BuildSharded(size_t n, int shard_bits,
                                              uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> fps(n);
  for (uint64_t& fp : fps) fp = rng();
  directory::FingerprintSet set =
      directory::FingerprintSet::Build(std::move(fps), shard_bits);
  absl::StatusOr<DirectoryBuilder> builder =
      DirectoryBuilder::Create(kKey, ExporterDomains());
  EXPECT_TRUE(builder.ok());
  const uint64_t size = set.size();
  absl::StatusOr<std::shared_ptr<const Directory>> dir =
      std::move(*builder).BuildWithFingerprints(
          std::move(set), {size - size / 3, size / 3}, {});
  EXPECT_TRUE(dir.ok()) << dir.status();
  return *dir;
}

TEST_F(SnapshotFileTest, MultiShardRoundTrip) {
  std::shared_ptr<const Directory> original = BuildSharded(20000, 3, 7);
  const std::string path = Path("sharded.rgs");
  ASSERT_TRUE(WriteSnapshot(*original, Meta(), path).ok());
  for (SlotStorage storage :
       {SlotStorage::kHugePageCopy, SlotStorage::kMappedFile}) {
    ReadOptions options;
    options.slot_storage = storage;
    absl::StatusOr<LoadedSnapshot> loaded =
        ReadSnapshot(path, kKey, ExporterDomains(), options);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    const directory::FingerprintSet& a = original->fingerprints();
    const directory::FingerprintSet& b = loaded->directory->fingerprints();
    EXPECT_EQ(b.shard_bits(), 3);
    EXPECT_EQ(b.size(), a.size());
    for (size_t s = 0; s < a.shard_count(); ++s)
      EXPECT_EQ(b.shard_extent(s), a.shard_extent(s));
    EXPECT_TRUE(std::equal(a.all_slots().begin(), a.all_slots().end(),
                           b.all_slots().begin(), b.all_slots().end()));
    std::mt19937_64 rng(7);
    for (int i = 0; i < 20000; ++i) EXPECT_TRUE(b.Contains(rng()));
    for (int i = 0; i < 20000; ++i) {
      const uint64_t fp = rng();
      EXPECT_EQ(b.Contains(fp), a.Contains(fp));
    }
    EXPECT_EQ(loaded->directory->domain_address_count(0), 20000u - 20000u / 3);
  }
}

TEST_F(SnapshotFileTest, EncodeSnapshotIsWhatWriteSnapshotWrites) {
  std::shared_ptr<const Directory> dir = BuildDirectory(Addresses());
  const std::string path = Path("x.rgs");
  ASSERT_TRUE(WriteSnapshot(*dir, Meta(), path).ok());
  absl::StatusOr<std::string> encoded = EncodeSnapshot(*dir, Meta());
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(*encoded, ReadAll(path));

  absl::StatusOr<LoadedSnapshot> loaded = ReadSnapshotFromBuffer(
      "mem", std::make_shared<const std::string>(*encoded), kKey,
      ExporterDomains());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameAnswers(*dir, *loaded->directory);
}

TEST_F(SnapshotFileTest, LayoutMatchesTheDocumentedFormat) {
  const std::string bytes = ReadAll(WriteGood());
  ASSERT_GT(bytes.size(), kHeaderBytes + kTrailerBytes);
  EXPECT_EQ(bytes.substr(0, 8), std::string("RGSNAP\0\1", 8));
  EXPECT_EQ(Load64(bytes, kOffFileSize), bytes.size());
  EXPECT_EQ(Load64(bytes, kOffCreatedAt),
            static_cast<uint64_t>(absl::ToUnixNanos(kCreated)));
  EXPECT_EQ(Load64(bytes, kOffSlotsOffset) % kSlotAlignment, 0u);
  EXPECT_EQ(bytes.substr(bytes.size() - 24, 8), std::string("RGSNEND\0", 8));
  EXPECT_EQ(Load64(bytes, bytes.size() - 16), bytes.size());
  EXPECT_EQ(Load64(bytes, bytes.size() - 8),
            ChecksumOf(std::string_view(bytes).substr(0, bytes.size() - 8)));
  // No plaintext address (local parts included) is ever written.
  for (const char* a :
       {"user1@example.com", "user1", "Person.7", "person.7", "alias3"}) {
    EXPECT_EQ(bytes.find(a), std::string::npos) << a;
  }
}

TEST_F(SnapshotFileTest, InspectAndVerify) {
  const std::string path = WriteGood();
  absl::StatusOr<SnapshotInfo> info = InspectSnapshot(path);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, "2026-11-29T04:00:00Z#42");
  EXPECT_EQ(info->address_count, 4700u);
  EXPECT_EQ(info->key_id, kKey.Id());
  EXPECT_EQ(info->file_size, ReadAll(path).size());
  ASSERT_EQ(info->domains.size(), 2u);
  EXPECT_EQ(info->domains[0].address_count, 3200u);

  absl::StatusOr<SnapshotInfo> from_buffer =
      InspectSnapshotBuffer(path, ReadAll(path));
  ASSERT_TRUE(from_buffer.ok());
  EXPECT_EQ(from_buffer->domains, info->domains);
  EXPECT_EQ(from_buffer->checksum, info->checksum);

  EXPECT_TRUE(VerifySnapshot(path, std::nullopt).ok());
  EXPECT_TRUE(VerifySnapshot(path, kKey).ok());
  const SipKey other{1, 2};
  absl::Status wrong = VerifySnapshot(path, other);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------
// One test per failure mode, each with the exact message.

TEST_F(SnapshotFileTest, EmptyFile) {
  const std::string path = Path("empty.rgs");
  absl::Status st = ReadBytes("empty.rgs", "");
  EXPECT_EQ(st, Damaged("empty", "snapshot " + path + ": file is empty"));
  // Its own reason in reload metrics, logs and status, not "checksum".
  EXPECT_EQ(SnapshotDamage(st), "empty");
  EXPECT_EQ(InspectSnapshot(path).status(), st);
  EXPECT_EQ(VerifySnapshot(path, std::nullopt), st);
}

TEST_F(SnapshotFileTest, MissingFile) {
  const std::string path = Path("nope.rgs");
  absl::StatusOr<LoadedSnapshot> loaded =
      ReadSnapshot(path, kKey, ExporterDomains());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loaded.status().message(),
            "snapshot " + path + ": cannot open: No such file or directory");
}

TEST_F(SnapshotFileTest, NotARegularFile) {
  absl::StatusOr<SnapshotInfo> info = InspectSnapshot(dir_);
  EXPECT_EQ(info.status(),
            absl::InvalidArgumentError("snapshot " + dir_ +
                                       ": is a directory, not a regular file"));
  EXPECT_EQ(InspectSnapshot("/dev/zero").status(),
            absl::InvalidArgumentError(
                "snapshot /dev/zero: is a character device, not a regular "
                "file"));
}

// Issue 19: a FIFO at the snapshot path blocked open(2) (and the reload, and
// shutdown behind it) until a writer appeared.
TEST_F(SnapshotFileTest, FifoIsRefusedWithoutBlocking) {
  const std::string path = Path("fifo.rgs");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const absl::Time start = absl::Now();
  const absl::Status expected = absl::InvalidArgumentError(
      "snapshot " + path + ": is a FIFO, not a regular file");
  EXPECT_EQ(ReadSnapshot(path, kKey, ExporterDomains()).status(), expected);
  EXPECT_EQ(InspectSnapshot(path).status(), expected);
  EXPECT_EQ(VerifySnapshot(path, kKey), expected);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// A file whose end is not a trailer: refused after reading the header and
// the last 24 bytes, whatever its size.
TEST_F(SnapshotFileTest, SparseFileBehindAPlausibleHeaderIsNotRead) {
  const std::string good = ReadAll(WriteGood());
  const std::string path = Path("sparse.rgs");
  constexpr uint64_t kSize = uint64_t{4} << 30;
  std::string head = good.substr(0, kHeaderBytes);
  Store64(head, kOffFileSize, kSize);
  WriteAllBytes(path, head);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(kSize)), 0);
  const absl::Time start = absl::Now();
  for (SlotStorage storage :
       {SlotStorage::kHugePageCopy, SlotStorage::kMappedFile}) {
    ReadOptions options;
    options.slot_storage = storage;
    EXPECT_EQ(ReadSnapshot(path, kKey, ExporterDomains(), options).status(),
              absl::DataLossError("snapshot " + path +
                                  ": trailer: bad magic (the file is corrupt "
                                  "or incomplete)"));
  }
  // Reading 4 GiB of zeros took ~16 s and 4 GB of memory before.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

// A sparse file larger than its header claims: refused on the size alone.
TEST_F(SnapshotFileTest, SparseFileLargerThanItsHeaderSaysIsNotRead) {
  const std::string good = ReadAll(WriteGood());
  const std::string path = Path("big.rgs");
  constexpr uint64_t kSize = uint64_t{4} << 30;
  WriteAllBytes(path, good);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(kSize)), 0);
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadSnapshot(path, kKey, ExporterDomains()).status(),
            absl::DataLossError(
                absl::StrCat("snapshot ", path, ": size mismatch: file has ",
                             kSize, " bytes, header says ", good.size())));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

// A header that claims more than kMaxSnapshotBytes, with a file that long.
TEST_F(SnapshotFileTest, FileAboveTheMaximumIsRefusedBeforeReading) {
  const std::string good = ReadAll(WriteGood());
  const std::string path = Path("huge.rgs");
  const uint64_t size = kMaxSnapshotBytes + 4096;
  std::string head = good.substr(0, kHeaderBytes);
  Store64(head, kOffFileSize, size);
  WriteAllBytes(path, head);
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
    GTEST_SKIP() << "the file system refuses a sparse file of " << size;
  }
  EXPECT_EQ(ReadSnapshot(path, kKey, ExporterDomains()).status(),
            absl::InvalidArgumentError(
                absl::StrCat("snapshot ", path, ": header: file size ", size,
                             " is above the maximum 17179869184")));
}

TEST_F(SnapshotFileTest, WrongMagic) {
  std::string bytes = ReadAll(WriteGood());
  const std::string expected =
      "snapshot " + Path("zip.rgs") + ": not an rcptguard snapshot (bad magic)";
  bytes.replace(0, 4, "PK\x03\x04");
  EXPECT_EQ(ReadBytes("zip.rgs", bytes), absl::InvalidArgumentError(expected));
  // A short file that is not a snapshot is not "truncated".
  EXPECT_EQ(ReadBytes("zip.rgs", "hello\n"),
            absl::InvalidArgumentError(expected));
  // The start of the magic, and nothing else: a truncated snapshot.
  EXPECT_EQ(
      ReadBytes("zip.rgs", "RGS"),
      Damaged("truncated",
              "snapshot " + Path("zip.rgs") +
                  ": truncated: file has 3 bytes, less than a snapshot header "
                  "(128)"));
}

TEST_F(SnapshotFileTest, FutureVersion) {
  std::string bytes = ReadAll(WriteGood());
  Store32(bytes, kOffFormatVersion, 9);
  // Refused before the checksum: a newer version may checksum differently.
  EXPECT_EQ(ReadBytes("v9.rgs", bytes),
            absl::FailedPreconditionError(
                "snapshot " + Path("v9.rgs") +
                ": format version 9 is newer than this server supports (1)"));
  Store32(bytes, kOffFormatVersion, 0);
  EXPECT_EQ(ReadBytes("v0.rgs", bytes),
            absl::InvalidArgumentError("snapshot " + Path("v0.rgs") +
                                       ": format version 0 is invalid"));
}

TEST_F(SnapshotFileTest, Truncated) {
  const std::string bytes = ReadAll(WriteGood());
  const uint64_t size = bytes.size();
  const uint64_t slots = Load64(bytes, kOffSlotsOffset);
  const std::string path = Path("cut.rgs");
  // Inside the preamble: nothing says how long the file should be.
  EXPECT_EQ(
      ReadBytes("cut.rgs", bytes.substr(0, 3)),
      Damaged("truncated",
              "snapshot " + path +
                  ": truncated: file has 3 bytes, less than a snapshot header "
                  "(128)"));
  EXPECT_EQ(
      ReadBytes("cut.rgs", bytes.substr(0, 20)),
      Damaged("truncated",
              "snapshot " + path +
                  ": truncated: file has 20 bytes, less than a snapshot header "
                  "(128)"));
  for (uint64_t cut :
       {uint64_t{24}, uint64_t{100}, uint64_t{kHeaderBytes}, uint64_t{1000},
        slots, slots + 100, size - kTrailerBytes, size - 1}) {
    const absl::Status st = ReadBytes("cut.rgs", bytes.substr(0, cut));
    EXPECT_EQ(st,
              Damaged("truncated",
                      absl::StrCat("snapshot ", path, ": truncated: file has ",
                                   cut, " bytes, header says ", size)))
        << cut;
    EXPECT_EQ(SnapshotDamage(st), "truncated") << cut;
  }
}

// Reload reasons: only an empty or truncated file has a reason of its own;
// any other DataLoss is corruption ("checksum"), anything else none.
TEST_F(SnapshotFileTest, DamageNamesEmptyTruncatedAndCorrupt) {
  std::string bytes = ReadAll(WriteGood());
  EXPECT_EQ(SnapshotDamage(ReadBytes("e.rgs", "")), "empty");
  EXPECT_EQ(SnapshotDamage(ReadBytes("t.rgs", bytes.substr(0, 100))),
            "truncated");
  EXPECT_EQ(SnapshotDamage(ReadBytes("l.rgs", bytes + "x")), "checksum");
  std::string flipped = bytes;
  flipped[kHeaderBytes + 1] ^= 1;
  EXPECT_EQ(SnapshotDamage(ReadBytes("f.rgs", flipped)), "checksum");
  EXPECT_EQ(SnapshotDamage(ReadBytes("z.rgs", "hello\n")), "");
  EXPECT_EQ(SnapshotDamage(absl::OkStatus()), "");
}

TEST_F(SnapshotFileTest, TrailingBytes) {
  const std::string bytes = ReadAll(WriteGood()) + "extra";
  EXPECT_EQ(ReadBytes("long.rgs", bytes),
            absl::DataLossError(absl::StrCat(
                "snapshot ", Path("long.rgs"), ": size mismatch: file has ",
                bytes.size(), " bytes, header says ", bytes.size() - 5)));
}

TEST_F(SnapshotFileTest, FlippedByteAnywhereIsACorruptChecksum) {
  const std::string good = ReadAll(WriteGood());
  const uint64_t slots = Load64(good, kOffSlotsOffset);
  const std::string path = Path("flip.rgs");
  const std::vector<std::pair<std::string, uint64_t>> places = {
      {"header: created_at", kOffCreatedAt + 2},
      {"header: key id", 40},
      {"header: address count", kOffAddressCount},
      {"header: shard bits", kOffShardBits},
      {"metadata: source", kHeaderBytes + 10},
      {"metadata: a domain name", good.find("example.org")},
      {"padding", slots - 1},
      {"slots: first", slots},
      {"slots: middle", slots + (good.size() - slots) / 2},
      {"trailer: magic", good.size() - 24},
      {"trailer: size", good.size() - 13},
      {"trailer: checksum", good.size() - 1},
  };
  for (const auto& [what, at] : places) {
    std::string bad = good;
    bad[at] ^= 0x10;
    // The trailer is checked before the body is read (and checksummed).
    const std::string expected =
        what == "trailer: magic"
            ? "snapshot " + path +
                  ": trailer: bad magic (the file is corrupt or incomplete)"
        : what == "trailer: size"
            ? absl::StrCat("snapshot ", path, ": trailer: file size ",
                           Load64(bad, bad.size() - 16),
                           " differs from the header's ", good.size())
            : ChecksumMessage(path, bad);
    EXPECT_EQ(ReadBytes("flip.rgs", bad), absl::DataLossError(expected))
        << what;
    EXPECT_EQ(InspectSnapshot(path).status().code(),
              absl::StatusCode::kDataLoss)
        << what;
  }
}

TEST_F(SnapshotFileTest, WrongKey) {
  const std::string path = WriteGood();
  const SipKey other{0x1111, 0x2222};
  absl::StatusOr<LoadedSnapshot> loaded =
      ReadSnapshot(path, other, ExporterDomains());
  EXPECT_EQ(loaded.status(), absl::FailedPreconditionError(absl::StrFormat(
                                 "snapshot %s was made with key id 0x%016x, "
                                 "this server's key id is 0x%016x",
                                 path, kKey.Id(), other.Id())));
  EXPECT_EQ(VerifySnapshot(path, other), loaded.status());
  // No key needed to inspect.
  EXPECT_TRUE(InspectSnapshot(path).ok());
}

// Consistent checksums over inconsistent content: what a buggy or hostile
// writer could produce. Each is caught by the header bounds or the layout.
TEST_F(SnapshotFileTest, HeaderFieldsOutOfBounds) {
  const std::string good = ReadAll(WriteGood());
  const std::string prefix = "snapshot " + Path("h.rgs") + ": ";
  struct Case {
    size_t offset;
    uint64_t value;
    int width;
    std::string message;
  };
  const uint64_t slots = Load64(good, kOffSlotsOffset);
  const std::vector<Case> cases = {
      {24, 64, 4, "header: header size 64 is outside [128, 65536]"},
      {24, 1 << 20, 4, "header: header size 1048576 is outside [128, 65536]"},
      {kOffDomainCount, 1000000, 4,
       "header: 1000000 domains do not fit in the metadata section"},
      {kOffDomainCount, 3, 4,
       "metadata: domain 2 name runs past the metadata section"},
      {kOffDomainCount, 1, 4, "metadata: 37 bytes after the domain table"},
      {56, 8, 8, "header: metadata offset 8 is out of bounds"},
      {64, uint64_t{1} << 40, 8,
       "header: metadata size 1099511627776 is out of bounds"},
      {kOffShardBits, 17, 4, "header: shard_bits 17 is outside [0, 16]"},
      {kOffShardBits, 16, 4,
       absl::StrCat("header: shard table offset ", Load64(good, 80),
                    " is out of bounds")},
      {80, 7, 8, "header: shard table offset 7 is out of bounds"},
      {kOffSlotsOffset, slots + 4, 8,
       absl::StrCat("header: slots offset ", slots + 4, " is out of bounds")},
      {kOffSlotsOffset, slots + 8, 8,
       absl::StrCat("header: slot count ", Load64(good, 96),
                    " does not match the ", good.size() - 24 - slots - 8,
                    " bytes of slots")},
      {kOffSlotsOffset, 0, 8, "header: slots offset 0 is out of bounds"},
      {96, 5, 8,
       absl::StrCat("header: slot count 5 does not match the ",
                    good.size() - 24 - slots, " bytes of slots")},
      {kOffAddressCount, 4701, 8,
       "header says 4701 addresses, the slots hold 4700"},
  };
  for (const Case& c : cases) {
    std::string bad = good;
    if (c.width == 4) {
      Store32(bad, c.offset, static_cast<uint32_t>(c.value));
    } else {
      Store64(bad, c.offset, c.value);
    }
    FixChecksum(bad);
    EXPECT_EQ(std::string(ReadBytes("h.rgs", bad).message()),
              prefix + c.message);
  }
}

TEST_F(SnapshotFileTest, MetadataOutOfBounds) {
  const std::string good = ReadAll(WriteGood());
  const std::string prefix = "snapshot " + Path("m.rgs") + ": ";
  // Source length (the first metadata field) claims more than is allowed.
  std::string bad = good;
  Store32(bad, kHeaderBytes, 5000);
  FixChecksum(bad);
  EXPECT_EQ(
      ReadBytes("m.rgs", bad),
      absl::InvalidArgumentError(
          prefix + "metadata: source is 5000 bytes, at most 4096 allowed"));
  // A mode that does not exist.
  bad = good;
  const size_t org = good.find("example.org");
  Store32(bad, org + 11, 7);
  FixChecksum(bad);
  EXPECT_EQ(
      ReadBytes("m.rgs", bad),
      absl::InvalidArgumentError(
          prefix + "metadata: domain \"example.org\" has unknown mode 7"));
  // Two rows with one name.
  bad = good;
  bad.replace(org, 11, "example.com");
  FixChecksum(bad);
  EXPECT_EQ(ReadBytes("m.rgs", bad),
            absl::InvalidArgumentError(
                prefix + "metadata: domain \"example.com\" is listed twice"));
}

TEST_F(SnapshotFileTest, TrailerInconsistent) {
  const std::string good = ReadAll(WriteGood());
  std::string bad = good;
  bad[bad.size() - 20] = 'X';
  FixChecksum(bad);
  EXPECT_EQ(ReadBytes("t.rgs", bad),
            absl::DataLossError("snapshot " + Path("t.rgs") +
                                ": trailer: bad magic (the file is corrupt or "
                                "incomplete)"));
  bad = good;
  Store64(bad, bad.size() - 16, 12345);
  FixChecksum(bad);
  EXPECT_EQ(ReadBytes("t.rgs", bad),
            absl::DataLossError(absl::StrCat(
                "snapshot ", Path("t.rgs"),
                ": trailer: file size 12345 differs from the header's ",
                good.size())));
}

TEST_F(SnapshotFileTest, SlotLayoutInvalid) {
  const std::string good = ReadAll(WriteGood());
  const uint64_t slots = Load64(good, kOffSlotsOffset);
  ASSERT_EQ(good[kOffShardBits], 0) << "the test assumes one shard";
  const std::string prefix =
      "snapshot " + Path("s.rgs") + ": fingerprint set: ";
  // The last slot must stay empty: probes stop there.
  std::string bad = good;
  Store64(bad, good.size() - 24 - 8, 42);
  FixChecksum(bad);
  EXPECT_EQ(ReadBytes("s.rgs", bad),
            absl::InvalidArgumentError(
                prefix + "shard 0 does not end with an empty slot"));
  // Two neighbours swapped break the ascending order of a run.
  bad = good;
  uint64_t p = 0;
  while (Load64(good, slots + 8 * p) == 0 ||
         Load64(good, slots + 8 * (p + 1)) == 0)
    ++p;
  Store64(bad, slots + 8 * p, Load64(good, slots + 8 * (p + 1)));
  Store64(bad, slots + 8 * (p + 1), Load64(good, slots + 8 * p));
  FixChecksum(bad);
  absl::Status st = ReadBytes("s.rgs", bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()),
              ::testing::StartsWith(prefix + "shard 0 slot "));
  EXPECT_THAT(std::string(st.message()),
              ::testing::EndsWith(" is out of order"));
  EXPECT_EQ(VerifySnapshot(Path("s.rgs"), std::nullopt), st);
}

// ---------------------------------------------------------------------------
// Writing.

TEST_F(SnapshotFileTest, WriteReplacesAtomicallyWithMode0644) {
  const std::string path = WriteGood("s.rgs");
  const mode_t old_umask = umask(077);
  std::shared_ptr<const Directory> small = BuildDirectory({"a@example.com"});
  absl::Status st = WriteSnapshot(*small, Meta(), path);
  umask(old_umask);
  ASSERT_TRUE(st.ok()) << st;
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
  EXPECT_THAT(ListDir(dir_), ElementsAre("s.rgs"));
  absl::StatusOr<SnapshotInfo> read = InspectSnapshot(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->address_count, 1u);
}

TEST_F(SnapshotFileTest, StaleTemporaryFileOfOurPidIsReplaced) {
  const std::string path = Path("s.rgs");
  WriteAllBytes(absl::StrCat(path, ".tmp.", getpid()), "left by a crash");
  ASSERT_TRUE(WriteSnapshot(*BuildDirectory(Addresses()), Meta(), path).ok());
  EXPECT_THAT(ListDir(dir_), ElementsAre("s.rgs"));
}

TEST_F(SnapshotFileTest, WriteRefusesFieldsBeyondTheFormatsBounds) {
  SnapshotMetadata meta = Meta();
  meta.source = std::string(5000, 's');
  const std::string path = Path("s.rgs");
  EXPECT_EQ(WriteSnapshot(*BuildDirectory({}), meta, path),
            absl::InvalidArgumentError(
                "snapshot " + path +
                ": cannot write: source is 5000 bytes, at most 4096 allowed"));
  EXPECT_THAT(ListDir(dir_), IsEmpty());
}

TEST_F(SnapshotFileTest, WriteIntoMissingFolderFailsCleanly) {
  const std::string path = Path("no/such/folder/s.rgs");
  absl::Status st = WriteSnapshot(*BuildDirectory({}), Meta(), path);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(),
            absl::StrCat("snapshot ", path, ": cannot create ", path, ".tmp.",
                         getpid(), ": No such file or directory"));
}

// Mounts a tmpfs on `dir` with `options`; false if this process may not.
bool MountTmpfs(const std::string& dir, const std::string& options) {
  return mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0;
}

TEST_F(SnapshotFileTest, WriteIntoReadOnlyFolderFailsCleanly) {
  const std::string mnt = Path("ro");
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  absl::Status st;
  if (geteuid() != 0) {
    // Permissions bind everyone but root.
    ASSERT_EQ(chmod(mnt.c_str(), 0555), 0);
    st = WriteSnapshot(*BuildDirectory({}), Meta(), mnt + "/s.rgs");
    EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  } else {
    if (mount("tmpfs", mnt.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0) {
      GTEST_SKIP() << "cannot mount a read-only tmpfs: "
                   << std::strerror(errno);
    }
    st = WriteSnapshot(*BuildDirectory({}), Meta(), mnt + "/s.rgs");
    EXPECT_EQ(st.message(),
              absl::StrCat("snapshot ", mnt, "/s.rgs: cannot create ", mnt,
                           "/s.rgs.tmp.", getpid(), ": Read-only file system"));
    EXPECT_THAT(ListDir(mnt), IsEmpty());
    EXPECT_EQ(umount(mnt.c_str()), 0);
  }
  EXPECT_FALSE(st.ok());
}

TEST_F(SnapshotFileTest, FullDiskLeavesOldSnapshotAndNoTemporaryFile) {
  const std::string mnt = Path("tiny");
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  if (!MountTmpfs(mnt, "size=64k")) {
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  }
  const std::string path = mnt + "/s.rgs";
  std::shared_ptr<const Directory> small =
      BuildDirectory({"a@example.com", "b@example.org"});
  ASSERT_TRUE(WriteSnapshot(*small, Meta(), path).ok());
  const std::string before = ReadAll(path);

  // ~40,000 slots (over 300 KiB) cannot fit in 64 KiB.
  std::vector<std::string> many;
  for (int i = 0; i < 30000; ++i)
    many.push_back(absl::StrCat("u", i, "@example.com"));
  absl::Status st = WriteSnapshot(*BuildDirectory(many), Meta(), path);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(st.message(),
            absl::StrCat("snapshot ", path, ": cannot write ", path, ".tmp.",
                         getpid(), ": No space left on device"));
  EXPECT_THAT(ListDir(mnt), ElementsAre("s.rgs"));
  EXPECT_EQ(ReadAll(path), before);
  {
    absl::StatusOr<LoadedSnapshot> loaded =
        ReadSnapshot(path, kKey, ExporterDomains());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->directory->address_count(), 2u);
  }
  EXPECT_EQ(umount(mnt.c_str()), 0) << std::strerror(errno);
}

// ---------------------------------------------------------------------------
// Seeds for tests/fuzz/snapshot_fuzz.cc: run with RG_WRITE_SNAPSHOT_CORPUS set
// to the corpus folder to (re)write them. Each is small: one valid snapshot
// of each shape, and one per failure mode.
TEST_F(SnapshotFileTest, FuzzSeeds) {
  const char* out = std::getenv("RG_WRITE_SNAPSHOT_CORPUS");
  if (out == nullptr)
    GTEST_SKIP() << "set RG_WRITE_SNAPSHOT_CORPUS to write the fuzz seeds";
  const std::string dir(out);
  auto encode = [](const Directory& d) {
    absl::StatusOr<std::string> bytes = EncodeSnapshot(d, Meta());
    EXPECT_TRUE(bytes.ok());
    return *bytes;
  };
  std::vector<std::string> few;
  for (int i = 0; i < 12; ++i)
    few.push_back(absl::StrCat("user", i, "@example.com"));
  for (int i = 0; i < 6; ++i)
    few.push_back(absl::StrCat("p", i, "@example.org"));
  few.push_back("a@example.net");
  const std::string valid = encode(*BuildDirectory(few));
  const uint64_t slots = Load64(valid, kOffSlotsOffset);
  std::vector<std::pair<std::string, std::string>> seeds = {
      {"valid.rgs", valid},
      {"valid_zero_addresses.rgs", encode(*BuildDirectory({}))},
      {"valid_no_domains.rgs", encode(*BuildDirectory({}, {}))},
      {"valid_8_shards.rgs", encode(*BuildSharded(100, 3, 1))},
      {"empty.rgs", ""},
      {"bad_magic.rgs", "PK\x03\x04" + valid.substr(4)},
      {"truncated_header.rgs", valid.substr(0, 60)},
      {"truncated_slots.rgs", valid.substr(0, slots + 40)},
      {"trailing_bytes.rgs", valid + "xyz"},
  };
  std::string bad = valid;
  Store32(bad, kOffFormatVersion, 9);
  seeds.push_back({"future_version.rgs", bad});
  bad = valid;
  bad[slots + 8] ^= 1;
  seeds.push_back({"flipped_slot.rgs", bad});
  bad = valid;
  Store32(bad, kOffShardBits, 17);
  FixChecksum(bad);
  seeds.push_back({"bad_shard_bits.rgs", bad});
  bad = valid;
  Store64(bad, valid.size() - 32, 42);
  FixChecksum(bad);
  seeds.push_back({"bad_layout.rgs", bad});
  bad = valid;
  Store32(bad, kOffDomainCount, 3);
  FixChecksum(bad);
  seeds.push_back({"bad_domain_count.rgs", bad});
  {
    absl::StatusOr<DirectoryBuilder> other =
        DirectoryBuilder::Create(SipKey{1, 2}, ExporterDomains());
    ASSERT_TRUE(other.ok());
    other->AddAddress("x@example.com");
    seeds.push_back({"wrong_key.rgs", encode(**std::move(*other).Build({}))});
  }
  for (const auto& [name, bytes] : seeds)
    WriteAllBytes(dir + "/" + name, bytes);
}

}  // namespace
}  // namespace rcptguard::snapshot
