// Live LDAP export: reads recipient entries from Active Directory or
// OpenLDAP with paged searches (RFC 2696) through libldap, and hands each
// entry to a sink as an ldif::LdifRecord, the same shape the LDIF reader
// produces, so ldif::MapEntry applies to both.
//
// Contract:
//   * ExportLdap connects to one server (`uri`), optionally upgrades with
//     StartTLS, binds (simple bind, or anonymous when bind_dn is empty),
//     then runs one subtree search per base DN, in order, always with the
//     Simple Paged Results control marked critical. Every entry is passed to
//     `sink` on the calling thread as soon as it arrives (one page at most is
//     buffered by libldap).
//   * It succeeds only when every page of every base DN ended with result
//     success and the paged-results response control, and the last cookie
//     was empty. Anything else is an error, and the caller must discard
//     everything the sink received: a truncated export never looks like
//     success. Errors include: options that do not make sense, an unreadable
//     or empty password file, connect / TLS / StartTLS / bind failures, a
//     search result other than success (noSuchObject, sizeLimitExceeded,
//     timeLimitExceeded, adminLimitExceeded, a referral, ...), a page
//     without the response control, no answer within `timeout`, a dropped
//     connection, and an attribute returned in ranges (";range=0-1499": AD's
//     MaxValRange was hit, values are missing; ranged retrieval is not
//     implemented).
//   * Error messages name the stage, the server URI and, for searches, the
//     base DN, then libldap's error string and code, then "; diagnostic: "
//     and the server's (or libldap's) diagnostic text when there is one.
//     Examples (one line each in reality):
//       LDAP connect to ldap://dc1:389/ failed:
//         Can't contact LDAP server (-1)
//       LDAP StartTLS on ldap://dc1:389/ failed (refusing to continue
//         without TLS): Protocol error (2); diagnostic: ...
//       LDAP bind to ldap://dc1:389/ as "CN=svc,..." failed:
//         Invalid credentials (49); diagnostic: ...
//       LDAP search of "DC=corp,DC=example" on ldap://dc1:389/ failed on
//         page 3 after 1000 entries: Size limit exceeded (4)
//     Option and password-file errors say what is wrong with which option or
//     file, without the LDAP prefix.
//     The status code follows the LDAP result (Unavailable for connection
//     problems, Unauthenticated for bad credentials, NotFound for
//     noSuchObject, ResourceExhausted for size / admin limits,
//     DeadlineExceeded for time limits and timeouts, PermissionDenied for
//     access problems, InvalidArgument for bad options, FailedPrecondition
//     for protocol surprises). The bind password never appears in an error,
//     a log line, or argv: it is read from `password_file` only.
//   * Search continuation references (AD returns them at a domain root for
//     DomainDnsZones, ForestDnsZones, Configuration and child domains) are
//     not followed; each is logged and counted in LdapExportStats::references.
//     Export child domains by listing their naming contexts as extra base
//     DNs (or query a Global Catalog, port 3268/3269).
//
// Thread safety: ExportLdap, DefaultFilter and RequestedAttributes may be
// called concurrently from different threads; each ExportLdap call uses its
// own connection and TLS context. While ExportLdap runs, SIGPIPE is blocked
// in the calling thread (a write to a connection the server dropped must
// become an error, not kill the process); any SIGPIPE it caused is consumed
// before it returns.
//
// Example:
//   LdapExportOptions options;
//   options.uri = "ldaps://dc1.corp.example:636";
//   options.ca_file = "/etc/rcptguard/corp-ca.pem";
//   options.bind_dn = "CN=svc-rcptguard,OU=Service,DC=corp,DC=example";
//   options.password_file = "/etc/rcptguard/ldap-password";
//   options.base_dns = {"DC=corp,DC=example"};
//   AttributeMapping mapping =
//   AttributeMapping::ForPreset(Preset::kActiveDirectory); options.filter =
//   DefaultFilter(mapping); options.attributes = RequestedAttributes(mapping);
//   std::vector<std::string> addresses;
//   absl::StatusOr<LdapExportStats> stats = ExportLdap(options, [&](const
//   LdifRecord& r) {
//     MappedEntry e = MapEntry(r, mapping);
//     if (e.outcome == EntryOutcome::kIncluded) ... add e.addresses ...
//   });
//   if (!stats.ok()) { discard addresses; keep the current directory; }
#ifndef RCPTGUARD_SERVER_LDAP_LDAP_EXPORT_H_
#define RCPTGUARD_SERVER_LDAP_LDAP_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/ldif/ldif.h"
#include "server/ldif/mapping.h"

namespace rcptguard::ldap {

struct LdapExportOptions {
  // One server: "ldap://host[:port]" or "ldaps://host[:port]" (a trailing
  // "/" is allowed). No lists: failover is DNS's or the caller's job.
  std::string uri;
  // StartTLS on an ldap:// URI. When the server refuses, the export fails;
  // it never continues in clear text. Not allowed with ldaps://.
  bool start_tls = false;
  // PEM CA bundle that verifies the server certificate (ldaps:// or
  // StartTLS). Empty: the system's default trust store. The server name in
  // the URI must match the certificate.
  std::string ca_file;
  // Tests only: skip certificate verification. Logged at error level on
  // every export. Not allowed without TLS.
  bool tls_insecure_skip_verify = false;
  // Simple bind DN; empty means anonymous (no bind at all).
  std::string bind_dn;
  // File holding the bind password (one trailing "\n" or "\r\n" is
  // stripped). Required with bind_dn, refused without. An empty password is
  // refused: servers treat it as an unauthenticated (anonymous) bind.
  std::string password_file;
  // Subtree search bases, searched in order; at least one.
  std::vector<std::string> base_dns;
  // RFC 4515 filter; required (see DefaultFilter).
  std::string filter;
  // Attributes to request; at least one (see RequestedAttributes). "*" is
  // allowed but pulls every attribute of every entry.
  std::vector<std::string> attributes;
  // Entries per page requested. AD serves at most MaxPageSize (1000) per
  // page; slapd refuses a page size above its `size.pr` limit
  // (adminLimitExceeded), which fails the export.
  int page_size = 500;
  // Per operation: TCP connect, TLS handshake, StartTLS, bind, and each
  // page of a search (from sending the request to its last message, time
  // spent in the sink included). Also sent to the server as the search time
  // limit (whole seconds, at least 1).
  absl::Duration timeout = absl::Seconds(30);
};

struct LdapExportStats {
  uint64_t entries = 0;     // entries handed to the sink
  uint64_t pages = 0;       // search result pages, over all base DNs
  uint64_t references = 0;  // continuation references skipped (see above)
};

// Runs the paged searches and calls sink(record) for each entry: `dn` as
// the server sent it, `line` 0, one LdifAttribute per value with the
// attribute name lower-cased, options (";binary") lower-cased in `options`,
// and the value's raw bytes. On error the sink may already have been called
// for some entries; the caller must discard them.
absl::StatusOr<LdapExportStats> ExportLdap(
    const LdapExportOptions& options,
    absl::FunctionRef<void(const ldif::LdifRecord&)> sink);

// The filter that selects the entries `mapping` can take addresses from:
// one of its object classes (when it lists any) AND one of its address or
// proxy attributes present; with the Active Directory account rules, also
// NOT objectClass=computer. Disabled accounts are deliberately not filtered
// on the server: shared, room and equipment mailboxes sit on disabled
// accounts, and MapEntry decides. For the AD preset:
//   (&(|(objectClass=user)(objectClass=contact)(objectClass=group)
//       (objectClass=msExchDynamicDistributionList)(objectClass=publicFolder))
//     (|(mail=*)(proxyAddresses=*))(!(objectClass=computer)))
// (on one line). Values are escaped per RFC 4515.
std::string DefaultFilter(const ldif::AttributeMapping& mapping);

// What to tell the operator when an export succeeded but read no entry at
// all: the base DNs and the filter that matched nothing, the usual causes,
// and how to override the filter. One line, e.g.
//   the search of base DN(s) "dc=example,dc=com" on ldap://dc1:389/ with
//   filter "(&...(!(objectClass=computer)))" returned no entry: check the
//   base DN and the bind account's read access; a server whose schema lacks
//   an object class the filter names (the ad preset's filter names
//   "computer"; OpenLDAP without an AD schema evaluates such a term as
//   undefined, so nothing matches) needs its own filter: pass --filter, e.g.
//   --filter='(|(mail=*)(proxyAddresses=*))'
std::string NoEntriesHint(const LdapExportOptions& options,
                          const ldif::AttributeMapping& mapping);

// The attributes MapEntry needs: the address and proxy attributes,
// objectClass, and with the Active Directory account rules also
// userAccountControl and msExchRecipientTypeDetails. No duplicates
// (case-insensitive), in that order.
std::vector<std::string> RequestedAttributes(
    const ldif::AttributeMapping& mapping);

}  // namespace rcptguard::ldap

#endif  // RCPTGUARD_SERVER_LDAP_LDAP_EXPORT_H_
