// Generated Active Directory / Exchange shaped directories for tests that
// load them into a private slapd (tests/testutil/slapd.h) or an LDIF file,
// with the answer every address must get once served.
//
// The directory (suffix dc=example,dc=com) serves example.com, its alias
// domain mail.example.com, and example.org. It holds `users` mailbox users
// (every tenth on a disabled account, every tenth hidden from address lists,
// every fourth with an example.org secondary, each with an alias-domain and
// an external secondary, an X500 proxy and a UPN), shared / room /
// equipment / linked mailboxes on disabled accounts, mail users and mail
// contacts forwarding to external targetAddresses, external contacts,
// distribution groups, dynamic groups, public folders, a security group,
// computers with a mail attribute, users without mail, and a service account
// (no mail, with a userPassword) to bind as.
//
// Contract: a pure function of its options. Addresses are ASCII, so the
// expectations below only need ASCII lower-casing and the alias mapping to
// match the address part's normalization.
//
// Thread safety: pure function; AdDirectory is a plain value.
#ifndef RCPTGUARD_TESTS_TESTUTIL_AD_ENTRIES_H_
#define RCPTGUARD_TESTS_TESTUTIL_AD_ENTRIES_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace rcptguard::testing {

inline constexpr char kAdSuffix[] = "dc=example,dc=com";
inline constexpr char kAdServiceDn[] =
    "cn=svc-rcptguard,ou=Service,dc=example,dc=com";

struct AdDirectoryOptions {
  int users = 2400;
  // userPassword of kAdServiceDn (an ordinary entry: size limits apply to it,
  // unlike the rootdn).
  std::string service_password = "Svc-Pa55-for-snapshot-tests";
  // Whether every mailbox user also has an address in the alias domain
  // mail.example.com.
  bool alias_domain_addresses = true;
  // How many entries of each other kind.
  int resources_per_kind = 25;  // shared, room, equipment, linked mailboxes
  int mail_users = 50;
  int mail_contacts = 100;
  int external_contacts = 20;
  int groups = 60;
  int dynamic_groups = 10;
  int public_folders = 5;
  int computers = 20;
  int users_without_mail = 40;
};

struct AdDirectory {
  // Starts with "version: 1" (SlapdServer strips it for slapadd).
  std::string ldif;

  // Served as rcptguardd would with the domains below: example.com with
  // alias mail.example.com, and example.org.
  std::vector<std::string> valid;       // included, in a served domain
  std::vector<std::string> unknown;     // served domain, must not be valid
  std::vector<std::string> not_served;  // outside the served domains

  // Distinct normalized addresses per served domain (alias addresses count
  // for example.com), as a snapshot's domain table must show them with the
  // domains example.com (alias mail.example.com) and example.org.
  std::map<std::string, uint64_t> domain_counts;

  // What the AD preset's mapping (MapEntry) must make of the entries,
  // whatever the domain, each value as written in the LDIF:
  std::set<std::string> mapped;      // every address it includes
  std::set<std::string> not_mapped;  // values that must never be an address

  uint64_t entries = 0;           // LDIF records (OUs, suffix and all)
  uint64_t matching_entries = 0;  // entries the AD preset's filter selects
  uint64_t included_entries = 0;  // of those, included by the mapping
  uint64_t disabled_entries = 0;  // of those, excluded as disabled
};

AdDirectory MakeAdDirectory(const AdDirectoryOptions& options = {});

// An AD-style LDIF (no OUs) of `users` enabled mailboxes prefixN@example.com,
// each with a second address prefixN.alt@example.com: bulk input for
// snapshot builds (600,000 users make a snapshot of a few MB).
std::string BulkAdLdif(int users, const std::string& prefix);

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_TESTUTIL_AD_ENTRIES_H_
