#include "server/ldif/mapping.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard::ldif {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

std::string SourceDir() {
  if (const char* env = std::getenv("RG_SOURCE_DIR");
      env != nullptr && *env != '\0')
    return env;
  return RG_SOURCE_DIR_FALLBACK;
}

// Builds a record from "name: value" lines (no LDIF encoding).
LdifRecord Record(
    std::initializer_list<std::pair<std::string, std::string>> attributes) {
  LdifRecord record;
  record.dn = "cn=test";
  record.line = 1;
  for (const auto& [name, value] : attributes) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    record.attributes.push_back({lower, "", value});
  }
  return record;
}

const AttributeMapping& Ad() {
  static const AttributeMapping* mapping = new AttributeMapping(
      AttributeMapping::ForPreset(Preset::kActiveDirectory));
  return *mapping;
}
const AttributeMapping& OpenLdap() {
  static const AttributeMapping* mapping =
      new AttributeMapping(AttributeMapping::ForPreset(Preset::kOpenLdap));
  return *mapping;
}

// A mailbox user as Exchange writes it.
LdifRecord AdUser(const std::string& uac, const std::string& type) {
  return Record(
      {{"objectClass", "top"},
       {"objectClass", "person"},
       {"objectClass", "organizationalPerson"},
       {"objectClass", "user"},
       {"userPrincipalName", "jdoe@example.com"},
       {"mail", "john.doe@example.com"},
       {"proxyAddresses", "SMTP:john.doe@example.com"},
       {"proxyAddresses", "smtp:jd@example.org"},
       {"proxyAddresses",
        "X500:/o=ExchangeLabs/ou=Exchange Administrative "
        "Group/cn=Recipients/cn=jd"},
       {"proxyAddresses", "SIP:john.lync@example.com"},
       {"proxyAddresses", "X400:c=US;a= ;p=Example;o=Exchange;s=Doe;g=John;"},
       {"userAccountControl", uac},
       {"msExchRecipientTypeDetails", type}});
}

TEST(ParsePresetTest, Names) {
  EXPECT_EQ(*ParsePreset("ad"), Preset::kActiveDirectory);
  EXPECT_EQ(*ParsePreset("AD"), Preset::kActiveDirectory);
  EXPECT_EQ(*ParsePreset("activedirectory"), Preset::kActiveDirectory);
  EXPECT_EQ(*ParsePreset("ActiveDirectory"), Preset::kActiveDirectory);
  EXPECT_EQ(*ParsePreset("openldap"), Preset::kOpenLdap);
  EXPECT_EQ(*ParsePreset("OpenLDAP"), Preset::kOpenLdap);
  absl::StatusOr<Preset> bad = ParsePreset("exchange");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "unknown mapping preset \"exchange\" (expected \"ad\", "
            "\"activedirectory\" or \"openldap\")");
  EXPECT_FALSE(ParsePreset("").ok());
}

TEST(AttributeMappingTest, Presets) {
  const AttributeMapping& ad = Ad();
  EXPECT_THAT(ad.address_attributes, ElementsAre("mail"));
  EXPECT_THAT(ad.proxy_attributes, ElementsAre("proxyAddresses"));
  EXPECT_THAT(ad.object_classes,
              ElementsAre("user", "contact", "group",
                          "msExchDynamicDistributionList", "publicFolder"));
  EXPECT_TRUE(ad.active_directory_account_rules);
  EXPECT_FALSE(ad.include_disabled_accounts);
  EXPECT_TRUE(ad.Validate().ok());

  const AttributeMapping& ol = OpenLdap();
  EXPECT_THAT(ol.address_attributes,
              ElementsAre("mail", "mailAlternateAddress", "mailLocalAddress"));
  EXPECT_THAT(ol.proxy_attributes, IsEmpty());
  EXPECT_THAT(ol.object_classes, IsEmpty());
  EXPECT_FALSE(ol.active_directory_account_rules);
  EXPECT_TRUE(ol.Validate().ok());
}

TEST(AttributeMappingTest, ValidateCustom) {
  AttributeMapping m;
  EXPECT_EQ(m.Validate().message(),
            "attribute mapping names no address or proxy attribute");
  m.object_classes = {"inetOrgPerson"};
  EXPECT_FALSE(m.Validate().ok());

  m.address_attributes = {"mail", "rfc822MailMember", "x-custom-mail"};
  EXPECT_TRUE(m.Validate().ok()) << m.Validate();
  m.proxy_attributes = {"otherMailbox"};
  EXPECT_TRUE(m.Validate().ok());

  AttributeMapping only_proxy;
  only_proxy.proxy_attributes = {"proxyAddresses"};
  EXPECT_TRUE(only_proxy.Validate().ok());

  auto error = [](AttributeMapping mapping) {
    return std::string(mapping.Validate().message());
  };
  AttributeMapping bad = m;
  bad.address_attributes.push_back("mail address");
  EXPECT_EQ(error(bad),
            "address attribute \"mail address\" is not a valid LDAP name");
  bad = m;
  bad.address_attributes.push_back("");
  EXPECT_EQ(error(bad), "address attribute \"\" is not a valid LDAP name");
  bad = m;
  bad.proxy_attributes.push_back("proxy:addresses");
  EXPECT_EQ(error(bad),
            "proxy attribute \"proxy:addresses\" is not a valid LDAP name");
  bad = m;
  bad.object_classes.push_back("bad class");
  EXPECT_EQ(error(bad), "object class \"bad class\" is not a valid LDAP name");
  bad = m;
  bad.address_attributes.push_back("mail;lang-en");
  EXPECT_EQ(error(bad),
            "address attribute \"mail;lang-en\" has an option; give the "
            "attribute type alone (values are matched "
            "without options)");
  bad = m;
  bad.proxy_attributes.push_back("MAIL");
  EXPECT_EQ(error(bad), "attribute \"MAIL\" is listed more than once");
  bad = m;
  bad.address_attributes.push_back("targetaddress");
  EXPECT_EQ(error(bad),
            "targetAddress cannot be an address attribute: it is where a "
            "contact or mail user forwards to, not an "
            "address of this organisation");
  bad = m;
  bad.proxy_attributes.push_back("userPrincipalName");
  EXPECT_EQ(error(bad),
            "userPrincipalName cannot be an address attribute: it is a logon "
            "name, and Exchange does not accept mail "
            "for it unless it is also in proxyAddresses");
  EXPECT_EQ(bad.Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MapEntryAdTest, MailboxUserTakesSmtpProxiesAndMailOnly) {
  MappedEntry e = MapEntry(AdUser("512", "1"), Ad());
  EXPECT_EQ(e.outcome, EntryOutcome::kIncluded);
  // mail and SMTP: primary are the same string: handed out once. X500, SIP,
  // X400 and the UPN are not addresses.
  EXPECT_THAT(e.addresses,
              ElementsAre("john.doe@example.com", "jd@example.org"));
}

TEST(MapEntryAdTest, SmtpTypeInAnyCase) {
  LdifRecord r = Record({{"objectClass", "user"},
                         {"proxyAddresses", "SmTp:a@example.com"},
                         {"proxyAddresses", "SMTP:b@example.com"},
                         {"proxyAddresses", "smtp:c@example.com"},
                         {"proxyAddresses", " smtp : d@example.com "},
                         {"proxyAddresses", "smtps:e@example.com"},
                         {"proxyAddresses", "smtp:"},
                         {"proxyAddresses", "f@example.com"},
                         {"proxyAddresses", "x500:smtp:g@example.com"},
                         {"proxyAddresses", "smtp:jürgen.müller@example.com"}});
  MappedEntry e = MapEntry(r, Ad());
  EXPECT_EQ(e.outcome, EntryOutcome::kIncluded);
  EXPECT_THAT(e.addresses,
              ElementsAre("a@example.com", "b@example.com", "c@example.com",
                          "d@example.com", "jürgen.müller@example.com"));
}

TEST(MapEntryAdTest, OnlyNonSmtpProxiesMeansNoAddresses) {
  LdifRecord r = Record({{"objectClass", "user"},
                         {"userPrincipalName", "a@example.com"},
                         {"proxyAddresses", "X500:/o=Org/cn=a"},
                         {"proxyAddresses", "SIP:a@example.com"},
                         {"mail", "   "}});
  EXPECT_EQ(MapEntry(r, Ad()).outcome, EntryOutcome::kNoAddresses);
  EXPECT_THAT(MapEntry(r, Ad()).addresses, IsEmpty());
}

TEST(MapEntryAdTest, UserWithOnlyUpnHasNoAddresses) {
  LdifRecord r = Record({{"objectClass", "user"},
                         {"userPrincipalName", "jdoe@example.com"},
                         {"userAccountControl", "512"}});
  EXPECT_EQ(MapEntry(r, Ad()).outcome, EntryOutcome::kNoAddresses);
}

TEST(MapEntryAdTest, ContactNeverUsesTargetAddress) {
  LdifRecord contact =
      Record({{"objectClass", "top"},
              {"objectClass", "contact"},
              {"mail", "partner@fabrikam.example.net"},
              {"targetAddress", "SMTP:partner@fabrikam.example.net"},
              {"proxyAddresses", "SMTP:partner@fabrikam.example.net"},
              {"proxyAddresses", "smtp:partner.fabrikam@example.com"}});
  MappedEntry e = MapEntry(contact, Ad());
  EXPECT_EQ(e.outcome, EntryOutcome::kIncluded);
  EXPECT_THAT(e.addresses, ElementsAre("partner@fabrikam.example.net",
                                       "partner.fabrikam@example.com"));

  LdifRecord mail_user =
      Record({{"objectClass", "user"},
              {"mail", "contractor@example.com"},
              {"targetAddress", "SMTP:someone@contractor.example.net"},
              {"userAccountControl", "512"},
              {"msExchRecipientTypeDetails", "128"}});
  EXPECT_THAT(MapEntry(mail_user, Ad()).addresses,
              ElementsAre("contractor@example.com"));

  LdifRecord only_target =
      Record({{"objectClass", "contact"},
              {"targetAddress", "SMTP:x@elsewhere.example.net"}});
  EXPECT_EQ(MapEntry(only_target, Ad()).outcome, EntryOutcome::kNoAddresses);
}

TEST(MapEntryAdTest, RecipientObjectClasses) {
  for (const char* oc :
       {"user", "contact", "group", "msExchDynamicDistributionList",
        "publicFolder", "USER", "msexchdynamicdistributionlist"}) {
    LdifRecord r = Record({{"objectClass", "top"},
                           {"objectClass", oc},
                           {"mail", "x@example.com"}});
    EXPECT_EQ(MapEntry(r, Ad()).outcome, EntryOutcome::kIncluded) << oc;
  }
  for (const char* oc : {"organizationalUnit", "domainDNS", "inetOrgPerson",
                         "person", "container"}) {
    LdifRecord r = Record({{"objectClass", "top"},
                           {"objectClass", oc},
                           {"mail", "x@example.com"}});
    EXPECT_EQ(MapEntry(r, Ad()).outcome, EntryOutcome::kWrongObjectClass) << oc;
  }
  LdifRecord no_class = Record({{"mail", "x@example.com"}});
  EXPECT_EQ(MapEntry(no_class, Ad()).outcome, EntryOutcome::kWrongObjectClass);
}

TEST(MapEntryAdTest, ComputerIsNeverARecipient) {
  LdifRecord computer = Record({{"objectClass", "top"},
                                {"objectClass", "person"},
                                {"objectClass", "organizationalPerson"},
                                {"objectClass", "user"},
                                {"objectClass", "Computer"},
                                {"mail", "scanner@example.com"},
                                {"proxyAddresses", "SMTP:scanner@example.com"},
                                {"userAccountControl", "4096"}});
  MappedEntry e = MapEntry(computer, Ad());
  EXPECT_EQ(e.outcome, EntryOutcome::kWrongObjectClass);
  EXPECT_THAT(e.addresses, IsEmpty());
}

TEST(MapEntryAdTest, HiddenFromAddressListsStillReceivesMail) {
  LdifRecord r = AdUser("512", "1");
  r.attributes.push_back({"msexchhidefromaddresslists", "", "TRUE"});
  EXPECT_EQ(MapEntry(r, Ad()).outcome, EntryOutcome::kIncluded);
}

TEST(MapEntryAdTest, DisabledAccounts) {
  struct Case {
    std::string uac, type;
    EntryOutcome outcome;
  };
  const std::vector<Case> cases = {
      {"512", "1", EntryOutcome::kIncluded},  // enabled user mailbox
      {"66048", "1",
       EntryOutcome::kIncluded},  // enabled, password never expires
      {"514", "1", EntryOutcome::kDisabledAccount},  // former employee
      {"66050", "1",
       EntryOutcome::kDisabledAccount},  // disabled + DONT_EXPIRE_PASSWORD
      {"2", "1", EntryOutcome::kDisabledAccount},
      {"514", "128", EntryOutcome::kDisabledAccount},  // disabled mail user
      {"514", "2", EntryOutcome::kIncluded},           // linked mailbox
      {"514", "4", EntryOutcome::kIncluded},           // shared mailbox
      {"514", "16", EntryOutcome::kIncluded},          // room mailbox
      {"514", "32", EntryOutcome::kIncluded},          // equipment mailbox
      {"514", "8589934592",
       EntryOutcome::kIncluded},  // remote room mailbox (hybrid)
      {"514", "17179869184",
       EntryOutcome::kIncluded},  // remote equipment mailbox
      {"514", "34359738368", EntryOutcome::kIncluded},  // remote shared mailbox
      {"514", "2199023255552", EntryOutcome::kIncluded},  // linked room mailbox
      {"514", "2147483648",
       EntryOutcome::kDisabledAccount},  // remote user mailbox
      {"514", "not-a-number",
       EntryOutcome::kIncluded},  // unclear type: keep mail
      {"-2147483646", "1",
       EntryOutcome::kDisabledAccount},  // signed 32-bit form, bit 2 set
      {"not-a-number", "1",
       EntryOutcome::kIncluded},  // malformed uac: not disabled
      {" 514 ", "1",
       EntryOutcome::kDisabledAccount},  // surrounding spaces tolerated
      {"", "1", EntryOutcome::kIncluded},
  };
  for (const Case& c : cases) {
    MappedEntry e = MapEntry(AdUser(c.uac, c.type), Ad());
    EXPECT_EQ(e.outcome, c.outcome) << "uac " << c.uac << " type " << c.type;
    EXPECT_THAT(e.addresses,
                ElementsAre("john.doe@example.com", "jd@example.org"));
  }
}

TEST(MapEntryAdTest, DisabledWithoutTypeDetailsOrWithSeveralUacValues) {
  LdifRecord no_type = Record({{"objectClass", "user"},
                               {"mail", "a@example.com"},
                               {"userAccountControl", "514"}});
  EXPECT_EQ(MapEntry(no_type, Ad()).outcome, EntryOutcome::kDisabledAccount);
  // Disabled only when every value says so.
  LdifRecord mixed = no_type;
  mixed.attributes.push_back({"useraccountcontrol", "", "512"});
  EXPECT_EQ(MapEntry(mixed, Ad()).outcome, EntryOutcome::kIncluded);
  LdifRecord both_disabled = no_type;
  both_disabled.attributes.push_back({"useraccountcontrol", "", "66050"});
  EXPECT_EQ(MapEntry(both_disabled, Ad()).outcome,
            EntryOutcome::kDisabledAccount);
  // No userAccountControl (contacts, groups): never disabled.
  LdifRecord group =
      Record({{"objectClass", "group"}, {"mail", "g@example.com"}});
  EXPECT_EQ(MapEntry(group, Ad()).outcome, EntryOutcome::kIncluded);
}

TEST(MapEntryAdTest, DisabledWithoutAddressesCountsAsNoAddresses) {
  LdifRecord r = Record({{"objectClass", "user"},
                         {"userAccountControl", "514"},
                         {"userPrincipalName", "x@example.com"}});
  EXPECT_EQ(MapEntry(r, Ad()).outcome, EntryOutcome::kNoAddresses);
}

TEST(MapEntryAdTest, IncludeDisabledAccounts) {
  AttributeMapping m = Ad();
  m.include_disabled_accounts = true;
  MappedEntry e = MapEntry(AdUser("514", "1"), m);
  EXPECT_EQ(e.outcome, EntryOutcome::kIncluded);
  EXPECT_THAT(e.addresses,
              ElementsAre("john.doe@example.com", "jd@example.org"));
  // Computers stay out.
  LdifRecord computer = Record({{"objectClass", "user"},
                                {"objectClass", "computer"},
                                {"mail", "c@example.com"}});
  EXPECT_EQ(MapEntry(computer, m).outcome, EntryOutcome::kWrongObjectClass);
}

TEST(MapEntryAdTest, ManyAddressesAreDeduplicated) {
  LdifRecord r = Record({{"objectClass", "group"}});
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 100; ++i)
      r.attributes.push_back(
          {"proxyaddresses", "", absl::StrCat("smtp:a", i, "@x")});
  }
  r.attributes.push_back({"mail", "", "a5@x"});
  r.attributes.push_back(
      {"mail", "", "A5@x"});  // case differs: kept (the normalizer decides)
  MappedEntry e = MapEntry(r, Ad());
  ASSERT_EQ(e.addresses.size(), 101u);
  EXPECT_EQ(e.addresses.front(), "a0@x");
  EXPECT_EQ(e.addresses.back(), "A5@x");
}

TEST(MapEntryOpenLdapTest, MailAttributesAnyObjectClass) {
  LdifRecord r = Record({{"objectClass", "inetOrgPerson"},
                         {"mail", "a@example.com"},
                         {"mailAlternateAddress", "a.alt@example.com"},
                         {"MailLocalAddress", "a.local@example.com"},
                         {"proxyAddresses", "smtp:ignored@example.com"},
                         {"targetAddress", "ignored2@example.com"},
                         {"userAccountControl", "514"}});
  MappedEntry e = MapEntry(r, OpenLdap());
  EXPECT_EQ(e.outcome, EntryOutcome::kIncluded);
  EXPECT_THAT(e.addresses, ElementsAre("a@example.com", "a.alt@example.com",
                                       "a.local@example.com"));

  LdifRecord no_class = Record({{"mail", "b@example.com"}});
  EXPECT_EQ(MapEntry(no_class, OpenLdap()).outcome, EntryOutcome::kIncluded);
  LdifRecord ou =
      Record({{"objectClass", "organizationalUnit"}, {"ou", "people"}});
  EXPECT_EQ(MapEntry(ou, OpenLdap()).outcome, EntryOutcome::kNoAddresses);
  // No AD rules: a computer class means nothing special.
  LdifRecord computer =
      Record({{"objectClass", "computer"}, {"mail", "c@example.com"}});
  EXPECT_EQ(MapEntry(computer, OpenLdap()).outcome, EntryOutcome::kIncluded);
}

TEST(MapEntryCustomTest, ObjectClassFilterAndProxyAttribute) {
  AttributeMapping m;
  m.address_attributes = {"rfc822MailMember"};
  m.proxy_attributes = {"otherAddresses"};
  m.object_classes = {"mailRecipient"};
  ASSERT_TRUE(m.Validate().ok());
  LdifRecord r = Record({{"objectClass", "mailrecipient"},
                         {"rfc822MailMember", "a@example.com"},
                         {"otherAddresses", "SMTP:b@example.com"},
                         {"otherAddresses", "fax:+1234"},
                         {"mail", "not-mapped@example.com"}});
  EXPECT_THAT(MapEntry(r, m).addresses,
              ElementsAre("a@example.com", "b@example.com"));
  LdifRecord other = Record(
      {{"objectClass", "person"}, {"rfc822MailMember", "a@example.com"}});
  EXPECT_EQ(MapEntry(other, m).outcome, EntryOutcome::kWrongObjectClass);
}

constexpr char kSmallAdLdif[] =
    "version: 1\n"
    "\n"
    "dn: OU=Users,DC=example,DC=com\n"
    "objectClass: organizationalUnit\n"
    "\n"
    "dn: CN=A,OU=Users,DC=example,DC=com\n"
    "objectClass: user\n"
    "mail: a@example.com\n"
    "proxyAddresses: SMTP:a@example.com\n"
    "proxyAddresses: smtp:a2@example.com\n"
    "userAccountControl: 512\n"
    "\n"
    "dn: CN=Gone,OU=Users,DC=example,DC=com\n"
    "objectClass: user\n"
    "mail: gone@example.com\n"
    "userAccountControl: 514\n"
    "msExchRecipientTypeDetails: 1\n"
    "\n"
    "dn: CN=NoMail,OU=Users,DC=example,DC=com\n"
    "objectClass: user\n"
    "userPrincipalName: nomail@example.com\n"
    "\n"
    "dn: CN=Room,OU=Users,DC=example,DC=com\n"
    "objectClass: user\n"
    "proxyAddresses: SMTP:room@example.com\n"
    "userAccountControl: 514\n"
    "msExchRecipientTypeDetails: 16\n";

TEST(LoadLdifTest, CountsAndSink) {
  std::istringstream in(kSmallAdLdif);
  std::vector<std::string> sunk;
  absl::StatusOr<LdifLoadStats> stats = LoadLdif(
      &in, "small", Ad(), [&](std::string_view a) { sunk.emplace_back(a); });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->records, 5u);
  EXPECT_EQ(stats->included, 2u);
  EXPECT_EQ(stats->no_addresses, 1u);
  EXPECT_EQ(stats->wrong_object_class, 1u);
  EXPECT_EQ(stats->disabled, 1u);
  EXPECT_EQ(stats->addresses, 3u);
  EXPECT_THAT(
      sunk, ElementsAre("a@example.com", "a2@example.com", "room@example.com"));
}

TEST(LoadLdifTest, StopsAtFirstError) {
  std::istringstream in(
      std::string(kSmallAdLdif) +
      "\ndn: CN=Bad\nchangetype: delete\n\ndn: CN=After\nmail: x@y\n");
  int calls = 0;
  absl::StatusOr<LdifLoadStats> stats =
      LoadLdif(&in, "small", Ad(), [&](std::string_view) { ++calls; });
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stats.status().message(),
            "small:30: change records are not supported");
}

TEST(LoadLdifTest, EmptyInput) {
  std::istringstream in("version: 1\n");
  absl::StatusOr<LdifLoadStats> stats =
      LoadLdif(&in, "empty", Ad(), [](std::string_view) {});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->records, 0u);
}

TEST(LoadLdifFileTest, MissingFileAndDirectory) {
  absl::StatusOr<LdifLoadStats> missing = LoadLdifFile(
      "/nonexistent/rcptguard/none.ldif", Ad(), [](std::string_view) {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "LDIF file /nonexistent/rcptguard/none.ldif not found");

  const std::string dir = SourceDir() + "/tests/testdata/ldif";
  absl::StatusOr<LdifLoadStats> directory =
      LoadLdifFile(dir, Ad(), [](std::string_view) {});
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(directory.status().message(),
            absl::StrCat("LDIF file ", dir, " is a directory"));
}

// Issue 19: a FIFO or a device is refused at once, not read (or waited on).
TEST(LoadLdifFileTest, FifoAndDeviceAreRefused) {
  EXPECT_EQ(LoadLdifFile("/dev/zero", Ad(), [](std::string_view) {}).status(),
            absl::InvalidArgumentError(
                "LDIF file /dev/zero: is a character device, not a regular "
                "file"));
  char tmpl[] = "/tmp/rg-ldif-fifo-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string fifo = std::string(tmpl) + "/a.ldif";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(LoadLdifFile(fifo, Ad(), [](std::string_view) {}).status(),
            absl::InvalidArgumentError("LDIF file " + fifo +
                                       ": is a FIFO, not a regular file"));
  ::unlink(fifo.c_str());
  ::rmdir(tmpl);
}

TEST(LoadLdifFileTest, ErrorNamesThePath) {
  const std::string path =
      SourceDir() + "/tests/testdata/ldif/change_record.ldif";
  absl::StatusOr<LdifLoadStats> stats =
      LoadLdifFile(path, Ad(), [](std::string_view) {});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().message(),
            absl::StrCat(path, ":5: change records are not supported"));
}

// --- The committed sample and the generator's expectations -------------------

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Just enough JSON for the generator's output: "key": number and
// "key": ["string", ...] with simple escapes.
uint64_t JsonNumber(const std::string& json, const std::string& key) {
  const std::string needle = absl::StrCat("\"", key, "\": ");
  const size_t at = json.find(needle);
  EXPECT_NE(at, std::string::npos) << key;
  if (at == std::string::npos) return 0;
  size_t end = at + needle.size();
  while (end < json.size() &&
         std::isdigit(static_cast<unsigned char>(json[end])))
    ++end;
  uint64_t value = 0;
  EXPECT_TRUE(absl::SimpleAtoi(
      json.substr(at + needle.size(), end - at - needle.size()), &value))
      << key;
  return value;
}

std::vector<std::string> JsonStrings(const std::string& json,
                                     const std::string& key) {
  std::vector<std::string> out;
  const std::string needle = absl::StrCat("\"", key, "\": [");
  size_t i = json.find(needle);
  EXPECT_NE(i, std::string::npos) << key;
  if (i == std::string::npos) return out;
  i += needle.size();
  while (i < json.size() && json[i] != ']') {
    if (json[i] != '"') {
      ++i;
      continue;
    }
    std::string s;
    for (++i; i < json.size() && json[i] != '"'; ++i) {
      if (json[i] == '\\') {
        ++i;
        EXPECT_TRUE(json[i] == '"' || json[i] == '\\' || json[i] == '/')
            << "unsupported escape in " << key;
      }
      s += json[i];
    }
    ++i;
    out.push_back(std::move(s));
  }
  return out;
}

TEST(SampleLdifTest, MatchesGeneratorExpectations) {
  const std::string dir = SourceDir() + "/deploy/examples";
  const std::string json = ReadFile(dir + "/sample.expected.json");
  ASSERT_FALSE(json.empty());
  std::vector<std::string> sunk;
  absl::StatusOr<LdifLoadStats> stats =
      LoadLdifFile(dir + "/sample.ldif", Ad(),
                   [&](std::string_view a) { sunk.emplace_back(a); });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->records, JsonNumber(json, "records"));
  EXPECT_EQ(stats->included, JsonNumber(json, "included"));
  EXPECT_EQ(stats->no_addresses, JsonNumber(json, "no_addresses"));
  EXPECT_EQ(stats->wrong_object_class, JsonNumber(json, "wrong_object_class"));
  EXPECT_EQ(stats->disabled, JsonNumber(json, "disabled"));
  EXPECT_EQ(stats->addresses, JsonNumber(json, "addresses"));
  EXPECT_EQ(stats->records, 300u);

  const std::vector<std::string> included =
      JsonStrings(json, "included_addresses");
  EXPECT_EQ(included.size(), stats->addresses);
  EXPECT_THAT(sunk, UnorderedElementsAreArray(included));

  const std::set<std::string> sunk_set(sunk.begin(), sunk.end());
  const std::vector<std::string> excluded =
      JsonStrings(json, "excluded_addresses");
  EXPECT_GT(excluded.size(), 50u);
  for (const std::string& a : excluded)
    EXPECT_FALSE(sunk_set.count(a)) << a << " must not be an address";

  for (const std::string& a : JsonStrings(json, "valid"))
    EXPECT_TRUE(sunk_set.count(a)) << a;
  for (const std::string& a : JsonStrings(json, "excluded"))
    EXPECT_FALSE(sunk_set.count(a)) << a;
  // The documented demo addresses, spelled out.
  for (const char* a : {"alice@example.com", "bob@example.com",
                        "info@example.com", "conf-room-1@example.com"}) {
    EXPECT_TRUE(sunk_set.count(a)) << a;
  }
  EXPECT_FALSE(sunk_set.count("carol.former@example.com"));
  EXPECT_FALSE(sunk_set.count("scanner-01@example.com"));
  // Some SMTPUTF8 secondaries came from base64 values.
  EXPECT_TRUE(std::any_of(sunk.begin(), sunk.end(), [](const std::string& a) {
    return std::any_of(a.begin(), a.end(), [](char c) {
      return static_cast<unsigned char>(c) >= 0x80;
    });
  }));
}

}  // namespace
}  // namespace rcptguard::ldif
