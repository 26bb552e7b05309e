// Directory: the served answer to "does this recipient exist?".
//
// A Directory holds the accepted (served) domains with their policies and
// aliases, and a FingerprintSet of keyed fingerprints of every known
// normalized address "local@domain" (never the addresses themselves). It is
// built once by a DirectoryBuilder and never changes afterwards; a reload
// builds a new one (see DirectoryHandle).
//
//   RG_ASSIGN_OR_RETURN(DirectoryBuilder builder,
//                       DirectoryBuilder::Create(key, std::move(domains)));
//   for (std::string_view entry : source) builder.AddAddress(entry);
//   RG_ASSIGN_OR_RETURN(std::shared_ptr<const Directory> dir,
//                       std::move(builder).Build(info));
//   LookupResult r = dir->Lookup("<John.Doe+tag@Example.COM>");
//
// Lookup semantics, per raw recipient (as received, brackets and all):
//   1. address::ParseAddress; on error kMalformed with the parser's message.
//   2. The domain is resolved: a served domain, or an alias resolved to its
//      target domain; anything else is kNotServed.
//   3. postmaster@ any served domain (or alias) is kValid (RFC 5321 4.5.1).
//   4. "local@target" is looked up; if absent and the target domain has
//      subaddress delimiters that change the local part, the stripped form
//      "base@target" is looked up too. The exact form is always tried, so an
//      entry "a-b@x" is found even when '-' is a delimiter.
//   5. Found: kValid; otherwise kUnknown. The domain's mode (enforce or
//      monitor) does not change the status: the caller decides the reply.
//
// Thread safety: Directory is immutable; share it as
// std::shared_ptr<const Directory> and call anything from any thread.
// DirectoryBuilder is a plain single-threaded object.
#ifndef RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_H_
#define RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/directory/fingerprint_set.h"
#include "server/directory/siphash.h"

namespace rcptguard::directory {

// kEnforce: the edge rejects unknown recipients. kMonitor: the edge accepts
// them but the verdict is reported (for rolling out a domain safely).
enum class DomainMode { kEnforce, kMonitor };

// Per-domain SMTP reply texts; an empty string means the service default.
struct ReplyTexts {
  std::string valid;
  std::string unknown;
  std::string not_served;
  std::string malformed;
};

struct DomainPolicy {
  // Normalized with address::NormalizeDomain by DirectoryBuilder::Create.
  std::string name;
  DomainMode mode = DomainMode::kEnforce;
  // Characters that start a subaddress, e.g. "+" or "+-"; empty: none.
  std::string subaddress_delimiters;
  // Alias domains (normalized by the builder): user@alias is valid iff
  // user@name is.
  std::vector<std::string> aliases;
  ReplyTexts replies;
};

enum class LookupStatus { kValid, kUnknown, kNotServed, kMalformed };

struct LookupResult {
  LookupStatus status = LookupStatus::kMalformed;
  // Index into Directory::domains() of the served (target) domain for kValid
  // and kUnknown; -1 otherwise.
  int32_t domain_index = -1;
  // For kMalformed: the address parser's message; empty otherwise.
  std::string error;
  // For kValid and kUnknown (except postmaster): a keyed 64-bit fingerprint
  // of the normalized address, without its subaddress where the domain has
  // delimiters, so that "bob+1@" and "Bob+2@" are one address; 0 otherwise.
  // Harvest detection counts distinct unknown recipients with it.
  uint64_t fingerprint = 0;
};

// Addresses a directory source wrote with an alias domain ("user@alias"):
// the builder folds each into "user@target", so they add nothing (a
// mailbox that also has the target address is a duplicate) and every
// "user@alias" whose "user@target" exists is accepted anyway. Exchange
// accepts only what proxyAddresses list: explicit alias-domain addresses
// mean the domain is an Exchange accepted domain, not an alias
// (docs/ldap-mapping.md).
struct AliasDomainAddresses {
  std::string alias;       // the alias domain, normalized
  std::string target;      // the served domain it resolves to
  uint64_t addresses = 0;  // written with the alias, duplicates included
};

struct DirectoryInfo {
  std::string version;  // e.g. the snapshot's version string
  std::string source;   // e.g. "ldap://dc1.example.com" or a file path
  // When the data was exported: a snapshot's created_at, an LDIF file's
  // modification time (the oldest of several), not when it was read.
  absl::Time built_at;
  absl::Time loaded_at;  // when this process loaded it (set by the caller)
  // One entry per alias domain with explicit addresses, by alias; filled by
  // DirectoryBuilder::Build (a snapshot does not carry them).
  std::vector<AliasDomainAddresses> alias_domain_addresses;
};

// The fingerprint of a normalized address "local@domain" under `key`: the
// single definition used by builders, lookups and snapshots. (LookupBatch
// computes the same SipHash24 two at a time with SipHash24x2.)
uint64_t AddressFingerprint(const SipKey& key,
                            std::string_view normalized_address);

class Directory {
 public:
  // Lookups are processed in chunks of this many addresses: all of a chunk's
  // fingerprints are computed (and their slots prefetched) first, then
  // probed.
  static constexpr size_t kLookupChunk = 64;

  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

  // Looks up raw recipient strings as received. `out` must have raw.size()
  // elements; out[i] answers raw[i].
  void LookupBatch(absl::Span<const std::string_view> raw,
                   LookupResult* out) const;
  LookupResult Lookup(std::string_view raw) const;

  const std::vector<DomainPolicy>& domains() const { return domains_; }
  // Index of the served domain `normalized_domain` or of the target of the
  // alias `normalized_domain`; -1 if it is not served.
  int32_t FindDomain(std::string_view normalized_domain) const;

  // Distinct fingerprints in the directory.
  uint64_t address_count() const { return fingerprints_.size(); }
  // Distinct addresses added for domains()[domain_index] (alias addresses
  // count for their target); 0 for an index out of range.
  uint64_t domain_address_count(size_t domain_index) const;
  const DirectoryInfo& info() const { return info_; }
  const FingerprintSet& fingerprints() const { return fingerprints_; }
  // SipKey::Id() of the key the fingerprints were made with.
  uint64_t key_id() const { return key_id_; }

 private:
  friend class DirectoryBuilder;
  Directory() = default;

  // A domain's subaddress delimiters as a byte set, for lookups.
  struct Subaddressing {
    bool none = true;   // no delimiters
    bool ascii = true;  // every delimiter is ASCII: `bits` decides alone
    uint64_t bits[4] = {0, 0, 0, 0};
  };

  // address::StripSubaddress(local, domains_[domain_index]'s delimiters).
  // `candidates`: positions (bit i for local[i]) that include every octet
  // that may be a delimiter, as address::NormalizeSimpleAddress reports
  // them; all bits set when not known.
  std::string_view StripFor(int32_t domain_index, std::string_view local,
                            uint64_t candidates = ~uint64_t{0}) const;

  // Constant after construction.
  SipKey key_;
  uint64_t key_id_ = 0;
  std::vector<DomainPolicy> domains_;
  std::vector<Subaddressing> subaddressing_;  // parallel to domains_
  // Served names and aliases -> index into domains_.
  absl::flat_hash_map<std::string, int32_t> domain_index_;
  std::vector<uint64_t> domain_counts_;
  FingerprintSet fingerprints_;
  DirectoryInfo info_;
};

class DirectoryBuilder {
 public:
  // Validates and normalizes `domains` (names and aliases). Errors are
  // InvalidArgument naming the domain: an empty or invalid name or alias, a
  // domain listed twice, an alias that is a served domain or an alias of
  // another (or the same) domain, or an unusable subaddress delimiter.
  static absl::StatusOr<DirectoryBuilder> Create(
      SipKey key, std::vector<DomainPolicy> domains);

  DirectoryBuilder(DirectoryBuilder&&) = default;
  DirectoryBuilder& operator=(DirectoryBuilder&&) = default;

  enum class AddOutcome { kAdded, kDuplicate, kNotServed, kMalformed };

  // Adds one address as found in a directory source, parsed as lookups parse
  // recipients; an alias-domain address is stored under its target domain.
  // Subaddresses are not stripped (an entry is taken as written). On
  // kMalformed, *error (if non-null) receives the parser's message.
  AddOutcome AddAddress(std::string_view raw, std::string* error = nullptr);

  // Adds a precomputed fingerprint for domains()[domain_index] (the snapshot
  // loader's path). An index out of range is ignored.
  void AddFingerprint(size_t domain_index, uint64_t fp);

  // Expected number of addresses; avoids rehashing while adding.
  void Reserve(size_t addresses);

  // The domains as normalized by Create().
  const std::vector<DomainPolicy>& domains() const { return domains_; }
  // Distinct addresses added so far.
  size_t address_count() const { return seen_.size(); }
  // Addresses added so far with an alias domain, per alias (sorted).
  std::vector<AliasDomainAddresses> alias_domain_addresses() const;

  // Builds the directory and consumes the builder. `info` is stored as
  // given, except that alias_domain_addresses() is stored into it.
  absl::StatusOr<std::shared_ptr<const Directory>> Build(DirectoryInfo info) &&;

  // For the snapshot loader: builds the directory around a ready set (e.g.
  // FingerprintSet::FromSlots over a mapped snapshot) instead of the added
  // addresses, with the per-domain counts the snapshot recorded (one per
  // domain, in domains() order). FailedPrecondition if addresses were added,
  // InvalidArgument if `domain_counts` has the wrong size.
  absl::StatusOr<std::shared_ptr<const Directory>> BuildWithFingerprints(
      FingerprintSet fingerprints, std::vector<uint64_t> domain_counts,
      DirectoryInfo info) &&;

 private:
  DirectoryBuilder() = default;

  SipKey key_;
  std::vector<DomainPolicy> domains_;
  absl::flat_hash_map<std::string, int32_t> domain_index_;
  // Every distinct fingerprint added, for kDuplicate and the final set. A
  // fingerprint names its domain, so per-domain counts stay distinct too.
  absl::flat_hash_set<uint64_t> seen_;
  std::vector<uint64_t> domain_counts_;
  // Alias domain -> addresses written with it (AddAddress).
  absl::flat_hash_map<std::string, uint64_t> alias_addresses_;
};

}  // namespace rcptguard::directory

#endif  // RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_H_
