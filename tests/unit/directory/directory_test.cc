#include "server/directory/directory.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/address/address.h"

namespace rcptguard::directory {
namespace {

using AddOutcome = DirectoryBuilder::AddOutcome;

constexpr SipKey kKey{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

// Domain indexes in TestDomains().
constexpr int32_t kExample = 0;  // example.com, '+', aliases
constexpr int32_t kDash = 1;     // dash.example, "+-"
constexpr int32_t kPlain = 2;    // plain.example, no delimiters
constexpr int32_t kMonitor = 3;  // monitor.example, monitor mode

std::vector<DomainPolicy> TestDomains() {
  std::vector<DomainPolicy> d(4);
  d[kExample].name = "Example.COM.";
  d[kExample].subaddress_delimiters = "+";
  d[kExample].aliases = {"example.net", "Alias.Example.ORG."};
  d[kDash].name = "dash.example";
  d[kDash].subaddress_delimiters = "+-";
  d[kPlain].name = "plain.example";
  d[kMonitor].name = "monitor.example";
  d[kMonitor].mode = DomainMode::kMonitor;
  d[kMonitor].replies.unknown = "not here (monitored)";
  return d;
}

DirectoryBuilder MakeBuilder(
    std::vector<DomainPolicy> domains = TestDomains()) {
  absl::StatusOr<DirectoryBuilder> b =
      DirectoryBuilder::Create(kKey, std::move(domains));
  EXPECT_TRUE(b.ok()) << b.status();
  return *std::move(b);
}

std::shared_ptr<const Directory> Build(DirectoryBuilder builder,
                                       std::string version = "v1") {
  DirectoryInfo info;
  info.version = std::move(version);
  info.source = "test";
  info.built_at = absl::FromUnixSeconds(1700000000);
  info.loaded_at = absl::FromUnixSeconds(1700000100);
  absl::StatusOr<std::shared_ptr<const Directory>> dir =
      std::move(builder).Build(std::move(info));
  EXPECT_TRUE(dir.ok()) << dir.status();
  return *std::move(dir);
}

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DirectoryBuilder builder = MakeBuilder();
    for (std::string_view a :
         {"john.doe@example.com", "Jane@EXAMPLE.COM", "bob@example.net",
          "a-b@dash.example", "carol@dash.example", "dave+x@plain.example",
          "eve@monitor.example", "user@bücher.example.com"}) {
      std::string error;
      AddOutcome outcome = builder.AddAddress(a, &error);
      // bücher.example.com is not served: counted as not served.
      EXPECT_TRUE(outcome == AddOutcome::kAdded ||
                  outcome == AddOutcome::kNotServed)
          << a << " " << error;
    }
    dir_ = Build(std::move(builder));
  }

  void ExpectLookup(std::string_view raw, LookupStatus status,
                    int32_t domain_index) {
    LookupResult r = dir_->Lookup(raw);
    EXPECT_EQ(r.status, status) << raw;
    EXPECT_EQ(r.domain_index, domain_index) << raw;
    if (status != LookupStatus::kMalformed) {
      EXPECT_EQ(r.error, "") << raw;
    }
  }

  std::shared_ptr<const Directory> dir_;
};

TEST_F(DirectoryTest, ValidUnknownNotServed) {
  ExpectLookup("john.doe@example.com", LookupStatus::kValid, kExample);
  ExpectLookup("<john.doe@example.com>", LookupStatus::kValid, kExample);
  ExpectLookup("  <john.doe@example.com>  ", LookupStatus::kValid, kExample);
  ExpectLookup("carol@dash.example", LookupStatus::kValid, kDash);
  ExpectLookup("nobody@example.com", LookupStatus::kUnknown, kExample);
  ExpectLookup("john.doe@plain.example", LookupStatus::kUnknown, kPlain);
  ExpectLookup("john.doe@other.example", LookupStatus::kNotServed, -1);
  ExpectLookup("john.doe@sub.example.com", LookupStatus::kNotServed, -1);
}

TEST_F(DirectoryTest, MalformedCarriesParserMessage) {
  for (std::string_view raw :
       {"", "no-at-sign", "<unbalanced@example.com", "a..b@example.com",
        "user@[192.0.2.1]", "user@"}) {
    LookupResult r = dir_->Lookup(raw);
    EXPECT_EQ(r.status, LookupStatus::kMalformed) << raw;
    EXPECT_EQ(r.domain_index, -1) << raw;
    EXPECT_EQ(r.error, address::ParseAddress(raw).status().message()) << raw;
    EXPECT_FALSE(r.error.empty()) << raw;
  }
}

TEST_F(DirectoryTest, CaseInsensitive) {
  ExpectLookup("JOHN.DOE@EXAMPLE.COM", LookupStatus::kValid, kExample);
  ExpectLookup("John.Doe@Example.Com.", LookupStatus::kValid, kExample);
  ExpectLookup("jane@example.com", LookupStatus::kValid, kExample);
  ExpectLookup("JANE@example.com", LookupStatus::kValid, kExample);
  ExpectLookup("\"john.doe\"@example.com", LookupStatus::kValid, kExample);
}

TEST_F(DirectoryTest, AliasDomains) {
  // Addresses added under an alias are stored under the target, and every
  // alias answers for every target address.
  ExpectLookup("john.doe@example.net", LookupStatus::kValid, kExample);
  ExpectLookup("john.doe@alias.example.org", LookupStatus::kValid, kExample);
  ExpectLookup("bob@example.com", LookupStatus::kValid, kExample);
  ExpectLookup("bob@ALIAS.example.org", LookupStatus::kValid, kExample);
  ExpectLookup("nobody@example.net", LookupStatus::kUnknown, kExample);
  ExpectLookup("john.doe+tag@example.net", LookupStatus::kValid, kExample);
  EXPECT_EQ(dir_->FindDomain("example.com"), kExample);
  EXPECT_EQ(dir_->FindDomain("example.net"), kExample);
  EXPECT_EQ(dir_->FindDomain("alias.example.org"), kExample);
  EXPECT_EQ(dir_->FindDomain("monitor.example"), kMonitor);
  EXPECT_EQ(dir_->FindDomain("other.example"), -1);
  EXPECT_EQ(dir_->FindDomain(""), -1);
}

TEST_F(DirectoryTest, SubaddressStripping) {
  // example.com: '+' only.
  ExpectLookup("john.doe+tag@example.com", LookupStatus::kValid, kExample);
  ExpectLookup("john.doe+@example.com", LookupStatus::kValid, kExample);
  ExpectLookup("john.doe+a+b@example.com", LookupStatus::kValid, kExample);
  ExpectLookup("john.doe-tag@example.com", LookupStatus::kUnknown, kExample);
  ExpectLookup("nobody+tag@example.com", LookupStatus::kUnknown, kExample);
  // dash.example: '+' and '-'. The exact form is tried first, so the entry
  // a-b is found although '-' is a delimiter.
  ExpectLookup("a-b@dash.example", LookupStatus::kValid, kDash);
  ExpectLookup("carol-news@dash.example", LookupStatus::kValid, kDash);
  ExpectLookup("carol+news@dash.example", LookupStatus::kValid, kDash);
  ExpectLookup("a@dash.example", LookupStatus::kUnknown, kDash);
  // The cut is at the first delimiter: a-b+x strips to "a", not "a-b".
  ExpectLookup("a-b+x@dash.example", LookupStatus::kUnknown, kDash);
  // plain.example: no delimiters, so '+' is part of the local part.
  ExpectLookup("dave+x@plain.example", LookupStatus::kValid, kPlain);
  ExpectLookup("dave@plain.example", LookupStatus::kUnknown, kPlain);
  ExpectLookup("dave+y@plain.example", LookupStatus::kUnknown, kPlain);
  // A quoted local part is never cut.
  ExpectLookup("\"john.doe+x y\"@example.com", LookupStatus::kUnknown,
               kExample);
}

TEST_F(DirectoryTest, PostmasterValidInEveryServedDomain) {
  ExpectLookup("postmaster@example.com", LookupStatus::kValid, kExample);
  ExpectLookup("PostMaster@example.net", LookupStatus::kValid, kExample);
  ExpectLookup("<POSTMASTER@dash.example>", LookupStatus::kValid, kDash);
  ExpectLookup("postmaster@plain.example", LookupStatus::kValid, kPlain);
  ExpectLookup("postmaster@monitor.example", LookupStatus::kValid, kMonitor);
  ExpectLookup("postmaster@other.example", LookupStatus::kNotServed, -1);
}

TEST_F(DirectoryTest, MonitorDomainKeepsUnknownStatus) {
  ExpectLookup("eve@monitor.example", LookupStatus::kValid, kMonitor);
  ExpectLookup("ghost@monitor.example", LookupStatus::kUnknown, kMonitor);
  EXPECT_EQ(dir_->domains()[kMonitor].mode, DomainMode::kMonitor);
  EXPECT_EQ(dir_->domains()[kMonitor].replies.unknown, "not here (monitored)");
}

TEST_F(DirectoryTest, DomainsAreNormalized) {
  const std::vector<DomainPolicy>& d = dir_->domains();
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[kExample].name, "example.com");
  EXPECT_THAT(d[kExample].aliases,
              ::testing::ElementsAre("example.net", "alias.example.org"));
  EXPECT_EQ(d[kExample].subaddress_delimiters, "+");
  EXPECT_EQ(d[kDash].name, "dash.example");
}

TEST_F(DirectoryTest, CountsAndInfo) {
  EXPECT_EQ(dir_->address_count(), 7u);
  EXPECT_EQ(dir_->domain_address_count(kExample), 3u);  // john.doe, jane, bob
  EXPECT_EQ(dir_->domain_address_count(kDash), 2u);
  EXPECT_EQ(dir_->domain_address_count(kPlain), 1u);
  EXPECT_EQ(dir_->domain_address_count(kMonitor), 1u);
  EXPECT_EQ(dir_->domain_address_count(99), 0u);
  EXPECT_EQ(dir_->info().version, "v1");
  EXPECT_EQ(dir_->info().source, "test");
  EXPECT_EQ(dir_->info().built_at, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(dir_->info().loaded_at, absl::FromUnixSeconds(1700000100));
  EXPECT_EQ(dir_->key_id(), kKey.Id());
  EXPECT_EQ(dir_->fingerprints().size(), 7u);
}

TEST_F(DirectoryTest, FingerprintIsSipHashOfNormalizedAddress) {
  EXPECT_EQ(AddressFingerprint(kKey, "john.doe@example.com"),
            SipHash24(kKey, "john.doe@example.com"));
  EXPECT_TRUE(dir_->fingerprints().Contains(
      AddressFingerprint(kKey, "john.doe@example.com")));
  // Stored under the target domain, not the alias it was added with.
  EXPECT_TRUE(dir_->fingerprints().Contains(
      AddressFingerprint(kKey, "bob@example.com")));
  EXPECT_FALSE(dir_->fingerprints().Contains(
      AddressFingerprint(kKey, "bob@example.net")));
  // Another key finds nothing.
  SipKey other{kKey.k0, kKey.k1 + 1};
  EXPECT_FALSE(dir_->fingerprints().Contains(
      AddressFingerprint(other, "john.doe@example.com")));
}

TEST_F(DirectoryTest, BatchMatchesSingleLookups) {
  std::vector<std::string> raw;
  const char* kSamples[] = {"john.doe@example.com", "nobody@example.com",
                            "x@other.example",      "bad address",
                            "carol-x@dash.example", "postmaster@plain.example",
                            "bob@example.net",      "ghost@monitor.example",
                            "a-b@dash.example"};
  for (int i = 0; i < 300; ++i) raw.push_back(kSamples[i % 9]);
  for (int i = 0; i < 40; ++i)
    raw.push_back("user" + std::to_string(i) + "+t@example.com");
  std::vector<std::string_view> views(raw.begin(), raw.end());
  std::vector<LookupResult> out(views.size());
  // Leftovers from an earlier use of `out` must not leak into the answers.
  for (LookupResult& r : out) {
    r.status = LookupStatus::kValid;
    r.domain_index = 7;
    r.error = "stale";
  }
  dir_->LookupBatch(views, out.data());
  for (size_t i = 0; i < views.size(); ++i) {
    LookupResult single = dir_->Lookup(views[i]);
    EXPECT_EQ(out[i].status, single.status) << i << " " << views[i];
    EXPECT_EQ(out[i].domain_index, single.domain_index) << i;
    EXPECT_EQ(out[i].error, single.error) << i;
  }
  dir_->LookupBatch({}, nullptr);  // empty batch is a no-op
}

// LookupBatch against a plain model of the lookup rules (the full parser,
// a set of normalized strings, address::StripSubaddress), on random
// addresses in random batch sizes: the fast path, the per-domain delimiter
// sets, alias keys, hashing in sets of keys and chunk boundaries must not
// change any answer.
TEST(DirectoryModelTest, BatchesAgreeWithAPlainModelOfTheRules) {
  const std::vector<DomainPolicy> domains = TestDomains();
  DirectoryBuilder builder = MakeBuilder();
  // Normalized served name or alias -> index, as the rules define it.
  std::map<std::string, int32_t, std::less<>> domain_of;
  for (size_t i = 0; i < builder.domains().size(); ++i) {
    domain_of[builder.domains()[i].name] = static_cast<int32_t>(i);
    for (const std::string& a : builder.domains()[i].aliases) {
      domain_of[a] = static_cast<int32_t>(i);
    }
  }
  uint64_t state = 4242;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(state >> 33);
  };
  const std::vector<std::string> kLocals = {
      "john.doe",   "Jane", "a-b",          "a",     "carol", "dave+x", "x.y-z",
      "POSTMASTER", "q_r",  "\"quoted x\"", "ü-ser", "m+n-o"};
  const std::vector<std::string> kTags = {"",     "",     "",  "+t", "-t",
                                          "+a-b", "-x+y", "+", "-"};
  const std::vector<std::string> kDomains = {
      "example.com",          "EXAMPLE.com",   "example.net",
      "alias.example.org.",   "dash.example",  "plain.example",
      "monitor.example",      "other.example", "bad..example",
      "xn--bcher-kva.example"};
  auto random_address = [&] {
    std::string local = kLocals[next() % kLocals.size()];
    if (local.front() != '"') local += kTags[next() % kTags.size()];
    std::string a = local + "@" + kDomains[next() % kDomains.size()];
    if (next() % 10 == 0) a = "<" + a + ">";
    if (next() % 25 == 0) a = "not an address " + a;
    return a;
  };
  std::set<std::string> entries;  // "local@target" as the rules store them
  for (int i = 0; i < 300; ++i) {
    const std::string a = random_address();
    const AddOutcome outcome = builder.AddAddress(a);
    if (outcome != AddOutcome::kAdded && outcome != AddOutcome::kDuplicate) {
      continue;
    }
    absl::StatusOr<address::Address> parsed = address::ParseAddress(a);
    ASSERT_TRUE(parsed.ok()) << a;
    const int32_t d = domain_of.find(parsed->domain)->second;
    entries.insert(parsed->local + "@" + builder.domains()[d].name);
  }
  ASSERT_GT(entries.size(), 50u);
  std::shared_ptr<const Directory> dir = Build(std::move(builder));

  auto model = [&](std::string_view raw) {
    LookupResult r;
    absl::StatusOr<address::Address> parsed = address::ParseAddress(raw);
    if (!parsed.ok()) {
      r.status = LookupStatus::kMalformed;
      r.error = std::string(parsed.status().message());
      return r;
    }
    auto it = domain_of.find(parsed->domain);
    if (it == domain_of.end()) {
      r.status = LookupStatus::kNotServed;
      return r;
    }
    r.domain_index = it->second;
    const DomainPolicy& domain = dir->domains()[it->second];
    const std::string stripped = std::string(
        address::StripSubaddress(parsed->local, domain.subaddress_delimiters));
    const bool valid = address::IsPostmaster(parsed->local) ||
                       entries.count(parsed->local + "@" + domain.name) > 0 ||
                       entries.count(stripped + "@" + domain.name) > 0;
    r.status = valid ? LookupStatus::kValid : LookupStatus::kUnknown;
    return r;
  };

  int valid = 0;
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> raw(1 + next() % 200);
    for (std::string& a : raw) a = random_address();
    std::vector<std::string_view> views(raw.begin(), raw.end());
    std::vector<LookupResult> out(views.size());
    dir->LookupBatch(views, out.data());
    for (size_t i = 0; i < views.size(); ++i) {
      const LookupResult want = model(views[i]);
      ASSERT_EQ(out[i].status, want.status) << views[i];
      ASSERT_EQ(out[i].domain_index, want.domain_index) << views[i];
      ASSERT_EQ(out[i].error, want.error) << views[i];
      valid += out[i].status == LookupStatus::kValid;
    }
  }
  EXPECT_GT(valid, 1000);  // the model is not vacuous
}

TEST(DirectoryIdnTest, UnicodeAndAceDomainsAreOneDomain) {
  std::vector<DomainPolicy> domains(1);
  domains[0].name = "bücher.example";
  DirectoryBuilder builder = MakeBuilder(std::move(domains));
  EXPECT_EQ(builder.domains()[0].name, "xn--bcher-kva.example");
  EXPECT_EQ(builder.AddAddress("user@BÜCHER.example"), AddOutcome::kAdded);
  std::shared_ptr<const Directory> dir = Build(std::move(builder));
  EXPECT_EQ(dir->Lookup("user@xn--bcher-kva.example").status,
            LookupStatus::kValid);
  EXPECT_EQ(dir->Lookup("USER@bücher.example").status, LookupStatus::kValid);
}

TEST(DirectoryBuilderTest, AddOutcomes) {
  DirectoryBuilder builder = MakeBuilder();
  std::string error = "untouched";
  EXPECT_EQ(builder.AddAddress("john@example.com", &error), AddOutcome::kAdded);
  EXPECT_EQ(error, "untouched");
  EXPECT_EQ(builder.AddAddress("JOHN@example.com"), AddOutcome::kDuplicate);
  EXPECT_EQ(builder.AddAddress("<john@example.net>"), AddOutcome::kDuplicate);
  EXPECT_EQ(builder.AddAddress("john@other.example"), AddOutcome::kNotServed);
  EXPECT_EQ(builder.AddAddress("john@", &error), AddOutcome::kMalformed);
  EXPECT_EQ(error, address::ParseAddress("john@").status().message());
  EXPECT_EQ(builder.AddAddress("john"),
            AddOutcome::kMalformed);  // no error ptr
  // Subaddresses in a source are taken as written.
  EXPECT_EQ(builder.AddAddress("john+x@example.com"), AddOutcome::kAdded);
  EXPECT_EQ(builder.address_count(), 2u);
  std::shared_ptr<const Directory> dir = Build(std::move(builder));
  EXPECT_EQ(dir->address_count(), 2u);
  EXPECT_EQ(dir->domain_address_count(kExample), 2u);
  EXPECT_EQ(dir->domain_address_count(kDash), 0u);
}

TEST(DirectoryBuilderTest, EmptyDirectory) {
  std::shared_ptr<const Directory> dir = Build(MakeBuilder());
  EXPECT_EQ(dir->address_count(), 0u);
  EXPECT_EQ(dir->Lookup("john@example.com").status, LookupStatus::kUnknown);
  EXPECT_EQ(dir->Lookup("postmaster@example.com").status, LookupStatus::kValid);
}

TEST(DirectoryBuilderTest, NoDomains) {
  absl::StatusOr<DirectoryBuilder> b = DirectoryBuilder::Create(kKey, {});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->AddAddress("john@example.com"), AddOutcome::kNotServed);
  std::shared_ptr<const Directory> dir = Build(*std::move(b));
  EXPECT_EQ(dir->Lookup("john@example.com").status, LookupStatus::kNotServed);
}

TEST(DirectoryBuilderTest, AddFingerprint) {
  DirectoryBuilder builder = MakeBuilder();
  const uint64_t fp = AddressFingerprint(kKey, "x@example.com");
  builder.AddFingerprint(kExample, fp);
  builder.AddFingerprint(kExample, fp);  // duplicate: counted once
  builder.AddFingerprint(kPlain, AddressFingerprint(kKey, "y@plain.example"));
  builder.AddFingerprint(17, 12345);  // out of range: ignored
  EXPECT_EQ(builder.AddAddress("x@example.com"), AddOutcome::kDuplicate);
  std::shared_ptr<const Directory> dir = Build(std::move(builder));
  EXPECT_EQ(dir->address_count(), 2u);
  EXPECT_EQ(dir->domain_address_count(kExample), 1u);
  EXPECT_EQ(dir->domain_address_count(kPlain), 1u);
  EXPECT_EQ(dir->Lookup("x+tag@example.net").status, LookupStatus::kValid);
  EXPECT_EQ(dir->Lookup("Y@plain.example").status, LookupStatus::kValid);
}

TEST(DirectoryBuilderTest, BuildWithFingerprints) {
  FingerprintSet set =
      FingerprintSet::Build({AddressFingerprint(kKey, "x@example.com"),
                             AddressFingerprint(kKey, "y@dash.example")});
  absl::StatusOr<std::shared_ptr<const Directory>> dir =
      MakeBuilder().BuildWithFingerprints(set, {1, 1, 0, 0}, DirectoryInfo{});
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ((*dir)->Lookup("x@example.org.").status, LookupStatus::kNotServed);
  EXPECT_EQ((*dir)->Lookup("x@example.com").status, LookupStatus::kValid);
  EXPECT_EQ((*dir)->Lookup("y-z@dash.example").status, LookupStatus::kValid);
  EXPECT_EQ((*dir)->domain_address_count(kDash), 1u);
  EXPECT_EQ((*dir)->address_count(), 2u);

  absl::StatusOr<std::shared_ptr<const Directory>> wrong =
      MakeBuilder().BuildWithFingerprints(set, {1, 1, 0}, DirectoryInfo{});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message(), "3 domain counts for 4 domains");

  DirectoryBuilder used = MakeBuilder();
  used.AddAddress("x@example.com");
  absl::StatusOr<std::shared_ptr<const Directory>> mixed =
      std::move(used).BuildWithFingerprints(set, {1, 1, 0, 0}, DirectoryInfo{});
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mixed.status().message(),
            "BuildWithFingerprints called on a builder with added addresses");
}

// --- Builder errors: one case per failure mode, exact messages. -------------

std::string CreateError(std::vector<DomainPolicy> domains) {
  absl::StatusOr<DirectoryBuilder> b =
      DirectoryBuilder::Create(kKey, std::move(domains));
  EXPECT_FALSE(b.ok());
  if (b.ok()) return "";
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(b.status().message());
}

DomainPolicy Domain(std::string name, std::vector<std::string> aliases = {},
                    std::string delimiters = "") {
  DomainPolicy d;
  d.name = std::move(name);
  d.aliases = std::move(aliases);
  d.subaddress_delimiters = std::move(delimiters);
  return d;
}

TEST(DirectoryBuilderErrorsTest, EmptyName) {
  EXPECT_EQ(CreateError({Domain("a.example"), Domain("")}),
            "domains[1]: name is empty");
  EXPECT_EQ(CreateError({Domain("  ")}), "domains[0]: name is empty");
}

TEST(DirectoryBuilderErrorsTest, InvalidName) {
  for (const char* name : {"bad..example", "-x.example", "localhost",
                           "[192.0.2.1]", "a b.example"}) {
    EXPECT_EQ(
        CreateError({Domain(name)}),
        std::string("domain \"") + name + "\": " +
            std::string(address::NormalizeDomain(name).status().message()))
        << name;
  }
  EXPECT_EQ(CreateError({Domain("bad..example")}),
            "domain \"bad..example\": empty domain label");
}

TEST(DirectoryBuilderErrorsTest, DuplicateDomain) {
  EXPECT_EQ(CreateError({Domain("example.com"), Domain("EXAMPLE.com.")}),
            "domain \"example.com\" is listed twice");
}

TEST(DirectoryBuilderErrorsTest, EmptyAlias) {
  EXPECT_EQ(CreateError({Domain("example.com", {"example.net", ""})}),
            "domain \"example.com\": alias is empty");
}

TEST(DirectoryBuilderErrorsTest, InvalidAlias) {
  EXPECT_EQ(
      CreateError({Domain("example.com", {"bad..example"})}),
      "domain \"example.com\": alias \"bad..example\": empty domain label");
}

TEST(DirectoryBuilderErrorsTest, AliasIsServedDomain) {
  // Listed before or after the domain it names, and with another spelling.
  EXPECT_EQ(
      CreateError({Domain("a.example", {"B.example"}), Domain("b.example")}),
      "domain \"a.example\": alias \"b.example\" is a served domain");
  EXPECT_EQ(
      CreateError({Domain("b.example"), Domain("a.example", {"b.example."})}),
      "domain \"a.example\": alias \"b.example\" is a served domain");
  EXPECT_EQ(CreateError({Domain("a.example", {"A.EXAMPLE"})}),
            "domain \"a.example\": alias \"a.example\" is a served domain");
}

TEST(DirectoryBuilderErrorsTest, AliasOfTwoDomains) {
  EXPECT_EQ(CreateError({Domain("a.example", {"c.example"}),
                         Domain("b.example", {"C.Example"})}),
            "domain \"b.example\": alias \"c.example\" is already an alias of "
            "\"a.example\"");
  EXPECT_EQ(CreateError({Domain("a.example", {"c.example", "c.example"})}),
            "domain \"a.example\": alias \"c.example\" is already an alias of "
            "\"a.example\"");
}

TEST(DirectoryBuilderErrorsTest, InvalidDelimiter) {
  EXPECT_EQ(CreateError({Domain("a.example", {}, "+a")}),
            "domain \"a.example\": invalid subaddress delimiter 'a'");
  EXPECT_EQ(CreateError({Domain("a.example", {}, "@")}),
            "domain \"a.example\": invalid subaddress delimiter '@'");
  EXPECT_EQ(CreateError({Domain("a.example", {}, "+ ")}),
            "domain \"a.example\": invalid subaddress delimiter 0x20");
  EXPECT_EQ(CreateError({Domain("a.example", {}, "\"")}),
            "domain \"a.example\": invalid subaddress delimiter '\"'");
}

TEST(DirectoryBuilderErrorsTest, ValidConfigurations) {
  std::vector<DomainPolicy> ok = {Domain("a.example", {"c.example"}, "+-_=."),
                                  Domain("b.example", {"d.example"})};
  absl::StatusOr<DirectoryBuilder> b = DirectoryBuilder::Create(kKey, ok);
  EXPECT_TRUE(b.ok()) << b.status();
}

}  // namespace
}  // namespace rcptguard::directory
