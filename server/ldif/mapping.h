// Attribute mapping: which LDAP entries are mail recipients, and which of
// their attribute values are recipient addresses.
//
// An AttributeMapping names the attributes that hold addresses and the
// entries that count, with presets for Active Directory / Exchange and for
// OpenLDAP (docs/ldap-mapping.md explains every rule and why). MapEntry
// applies a mapping to one LdifRecord; LoadLdif / LoadLdifFile stream a
// whole LDIF export through it and hand each address to a sink.
//
// Contract:
//   * Addresses are handed out raw, as the directory holds them (surrounding
//     whitespace trimmed, exact duplicates within one entry dropped); they
//     are not normalized or checked here: that is the address part's job.
//   * The Active Directory rules never take `targetAddress` (a contact's or
//     mail user's external forwarding address) or `userPrincipalName` (a
//     logon name) as a recipient address; Validate() refuses both.
//   * When the account rules are on, an entry counts as disabled only when
//     every userAccountControl value is an integer with ACCOUNTDISABLE
//     (0x2) set; a malformed value means "not disabled", because a wrong
//     exclusion loses mail.
//   * LoadLdif stops at the first LDIF error and returns it; the caller must
//     then discard everything the sink received (no partial directories).
//
// Thread safety: AttributeMapping, MappedEntry and LdifLoadStats are plain
// values; MapEntry and Validate are pure and safe to call concurrently.
// LoadLdif calls `sink` on the calling thread only.
//
// Example:
//   AttributeMapping mapping =
//       AttributeMapping::ForPreset(Preset::kActiveDirectory);
//   RG_ASSIGN_OR_RETURN(
//       LdifLoadStats stats,
//       LoadLdifFile(path, mapping,
//                    [&](std::string_view a) { builder.Add(a); }));
#ifndef RCPTGUARD_SERVER_LDIF_MAPPING_H_
#define RCPTGUARD_SERVER_LDIF_MAPPING_H_

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/ldif/ldif.h"

namespace rcptguard::ldif {

enum class Preset { kActiveDirectory, kOpenLdap };

// userAccountControl ACCOUNTDISABLE.
inline constexpr int64_t kUacAccountDisable = 0x2;

// msExchRecipientTypeDetails bits of recipients that sit on a disabled
// account by design and still receive mail: linked (2), shared (4), room
// (16), equipment (32), and the hybrid remote room / equipment / shared
// mailboxes and linked room mailbox. The attribute holds one of these
// powers of two; it is tested as a bit mask, so a value combining kinds is
// kept too (the safer side).
inline constexpr int64_t kRecipientTypesOnDisabledAccounts =
    int64_t{2} | int64_t{4} | int64_t{16} | int64_t{32} |
    int64_t{8589934592} /* RemoteRoomMailbox */ |
    int64_t{17179869184} /* RemoteEquipmentMailbox */ |
    int64_t{34359738368} /* RemoteSharedMailbox */ |
    int64_t{2199023255552} /* LinkedRoomMailbox */;

struct AttributeMapping {
  // Plain address values, e.g. mail, mailAlternateAddress.
  std::vector<std::string> address_attributes;
  // "type:value" values; only type smtp (any case) is kept.
  std::vector<std::string> proxy_attributes;
  // The entry must have one of these; empty = any entry.
  std::vector<std::string> object_classes;
  // Apply the Active Directory account rules: entries with objectClass
  // computer are never recipients (computers also have objectClass user),
  // and disabled accounts are excluded unless msExchRecipientTypeDetails
  // is one of kRecipientTypesOnDisabledAccounts.
  bool active_directory_account_rules = false;
  // Exchange's own behaviour: disabled accounts stay valid.
  bool include_disabled_accounts = false;

  static AttributeMapping ForPreset(Preset p);

  // Validates a custom mapping: at least one address or proxy attribute;
  // every attribute and object class name is a valid attribute type (no
  // options: values are matched without them); no attribute listed twice;
  // never targetAddress or userPrincipalName. InvalidArgument otherwise.
  absl::Status Validate() const;
};

// "ad" | "activedirectory" | "openldap" (case-insensitive); InvalidArgument
// otherwise.
absl::StatusOr<Preset> ParsePreset(std::string_view name);

enum class EntryOutcome {
  kIncluded,
  kNoAddresses,
  kWrongObjectClass,
  kDisabledAccount
};

// Outcomes are decided in this order: kWrongObjectClass, kNoAddresses,
// kDisabledAccount, kIncluded; so "disabled" counts only entries that had
// addresses. `addresses` holds the raw address strings (not normalized) for
// kIncluded, and the addresses that were dropped for kDisabledAccount; it is
// empty otherwise.
struct MappedEntry {
  EntryOutcome outcome;
  std::vector<std::string> addresses;
};

MappedEntry MapEntry(const LdifRecord& record, const AttributeMapping& mapping);

struct LdifLoadStats {
  uint64_t records = 0, included = 0, no_addresses = 0, wrong_object_class = 0,
           disabled = 0, addresses = 0;
};

// Reads every record from `in`, maps it, and calls sink(address) for each
// address of an included entry (`addresses` counts those calls). Stops at
// the first LDIF error and returns it (the caller then discards everything:
// no partial directories). The mapping is not validated here.
absl::StatusOr<LdifLoadStats> LoadLdif(
    std::istream* in, std::string_view source_name,
    const AttributeMapping& mapping,
    absl::FunctionRef<void(std::string_view address)> sink);

// LoadLdif on a file, with the path as the error source name. NotFound
// naming the path when it does not exist, FailedPrecondition when it is a
// directory, another errno-derived status naming it when it cannot be
// opened. The file is opened with OpenRegularFile (common/file.h):
// a FIFO, a device or a file above kMaxLdifFileBytes (64 GiB; the file is
// streamed, never held whole) is refused with InvalidArgument before
// anything is read, and a file that grows past that bound while being read
// is refused rather than loaded in part.
absl::StatusOr<LdifLoadStats> LoadLdifFile(
    const std::string& path, const AttributeMapping& mapping,
    absl::FunctionRef<void(std::string_view address)> sink);

}  // namespace rcptguard::ldif

#endif  // RCPTGUARD_SERVER_LDIF_MAPPING_H_
