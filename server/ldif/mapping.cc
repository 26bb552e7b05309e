#include "server/ldif/mapping.h"

#include <cerrno>
#include <filesystem>
#include <istream>
#include <string>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/strings.h"

namespace rcptguard::ldif {
namespace {

// Past this many addresses in one entry, duplicates are found with a hash
// set instead of a linear scan (an entry may hold up to 100k values).
constexpr size_t kLinearDedupLimit = 16;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(ToAbsl(a), ToAbsl(b));
}

std::string_view StripWhitespace(std::string_view s) {
  return ToStd(absl::StripAsciiWhitespace(ToAbsl(s)));
}

bool ContainsIgnoreCase(const std::vector<std::string>& names,
                        std::string_view name) {
  for (const std::string& n : names) {
    if (EqualsIgnoreCase(n, name)) return true;
  }
  return false;
}

class AddressCollector {
 public:
  void Add(std::string_view address) {
    address = StripWhitespace(address);
    if (address.empty()) return;
    if (addresses_.size() < kLinearDedupLimit) {
      for (const std::string& a : addresses_) {
        if (a == address) return;
      }
    } else {
      if (seen_.empty()) {
        for (const std::string& a : addresses_) seen_.insert(a);
      }
      if (seen_.contains(ToAbsl(address))) return;
    }
    addresses_.emplace_back(address);
    if (!seen_.empty()) seen_.insert(addresses_.back());
  }
  std::vector<std::string> Take() { return std::move(addresses_); }
  bool empty() const { return addresses_.empty(); }

 private:
  std::vector<std::string> addresses_;
  // Copies of addresses_, built only once an entry passes
  // kLinearDedupLimit addresses (rare).
  absl::flat_hash_set<std::string> seen_;
};

// Disabled only when there is at least one userAccountControl value and
// every value is an integer with ACCOUNTDISABLE set: anything unclear keeps
// the entry, because a wrong exclusion loses mail.
bool IsDisabledAccount(const LdifRecord& record) {
  bool any = false;
  for (const LdifAttribute& attribute : record.attributes) {
    if (!EqualsIgnoreCase(attribute.name, "useraccountcontrol")) continue;
    int64_t uac = 0;
    if (!absl::SimpleAtoi(attribute.value, &uac)) return false;
    if ((uac & kUacAccountDisable) == 0) return false;
    any = true;
  }
  return any;
}

// Whether msExchRecipientTypeDetails marks a recipient that lives on a
// disabled account by design. A malformed value counts as such (keep mail).
bool IsRecipientOnDisabledAccountByDesign(const LdifRecord& record) {
  for (const LdifAttribute& attribute : record.attributes) {
    if (!EqualsIgnoreCase(attribute.name, "msexchrecipienttypedetails"))
      continue;
    int64_t type = 0;
    if (!absl::SimpleAtoi(attribute.value, &type)) return true;
    if ((type & kRecipientTypesOnDisabledAccounts) != 0) return true;
  }
  return false;
}

absl::Status ValidateNames(const std::vector<std::string>& names,
                           std::string_view what) {
  for (const std::string& name : names) {
    if (name.find(';') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(what), " \"", absl::CHexEscape(ToAbsl(name)),
                       "\" has an option; give the attribute type alone "
                       "(values are matched without options)"));
    }
    if (!IsValidAttributeDescription(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(what), " \"", absl::CHexEscape(ToAbsl(name)),
                       "\" is not a valid LDAP name"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

AttributeMapping AttributeMapping::ForPreset(Preset p) {
  AttributeMapping mapping;
  switch (p) {
    case Preset::kActiveDirectory:
      mapping.address_attributes = {"mail"};
      mapping.proxy_attributes = {"proxyAddresses"};
      mapping.object_classes = {"user", "contact", "group",
                                "msExchDynamicDistributionList",
                                "publicFolder"};
      mapping.active_directory_account_rules = true;
      break;
    case Preset::kOpenLdap:
      mapping.address_attributes = {"mail", "mailAlternateAddress",
                                    "mailLocalAddress"};
      break;
  }
  return mapping;
}

absl::Status AttributeMapping::Validate() const {
  if (address_attributes.empty() && proxy_attributes.empty()) {
    return absl::InvalidArgumentError(
        "attribute mapping names no address or proxy attribute");
  }
  if (absl::Status s = ValidateNames(address_attributes, "address attribute");
      !s.ok())
    return s;
  if (absl::Status s = ValidateNames(proxy_attributes, "proxy attribute");
      !s.ok())
    return s;
  if (absl::Status s = ValidateNames(object_classes, "object class"); !s.ok())
    return s;
  std::vector<std::string> seen;
  for (const std::vector<std::string>* list :
       {&address_attributes, &proxy_attributes}) {
    for (const std::string& name : *list) {
      if (absl::EqualsIgnoreCase(name, "targetAddress")) {
        return absl::InvalidArgumentError(
            "targetAddress cannot be an address attribute: it is where a "
            "contact or mail user forwards to, "
            "not an address of this organisation");
      }
      if (absl::EqualsIgnoreCase(name, "userPrincipalName")) {
        return absl::InvalidArgumentError(
            "userPrincipalName cannot be an address attribute: it is a logon "
            "name, and Exchange does not "
            "accept mail for it unless it is also in proxyAddresses");
      }
      if (ContainsIgnoreCase(seen, name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("attribute \"", name, "\" is listed more than once"));
      }
      seen.push_back(name);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Preset> ParsePreset(std::string_view name) {
  if (EqualsIgnoreCase(name, "ad") ||
      EqualsIgnoreCase(name, "activedirectory")) {
    return Preset::kActiveDirectory;
  }
  if (EqualsIgnoreCase(name, "openldap")) return Preset::kOpenLdap;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown mapping preset \"", absl::CHexEscape(ToAbsl(name)),
      "\" (expected \"ad\", \"activedirectory\" or \"openldap\")"));
}

MappedEntry MapEntry(const LdifRecord& record,
                     const AttributeMapping& mapping) {
  if (!mapping.object_classes.empty()) {
    bool wanted = false;
    for (const std::string& oc : mapping.object_classes) {
      if (record.HasObjectClass(oc)) {
        wanted = true;
        break;
      }
    }
    if (!wanted) return {EntryOutcome::kWrongObjectClass, {}};
  }
  // In AD a computer is also a user (objectClass user, computer).
  if (mapping.active_directory_account_rules &&
      record.HasObjectClass("computer")) {
    return {EntryOutcome::kWrongObjectClass, {}};
  }

  AddressCollector collector;
  for (const LdifAttribute& attribute : record.attributes) {
    if (ContainsIgnoreCase(mapping.address_attributes, attribute.name)) {
      collector.Add(attribute.value);
    }
    if (ContainsIgnoreCase(mapping.proxy_attributes, attribute.name)) {
      // "type:address"; only SMTP (SMTP: primary, smtp: secondary) is mail.
      const size_t colon = attribute.value.find(':');
      if (colon == std::string::npos) continue;
      std::string_view type =
          StripWhitespace(std::string_view(attribute.value).substr(0, colon));
      if (!EqualsIgnoreCase(type, "smtp")) continue;
      collector.Add(std::string_view(attribute.value).substr(colon + 1));
    }
  }
  if (collector.empty()) return {EntryOutcome::kNoAddresses, {}};

  if (mapping.active_directory_account_rules &&
      !mapping.include_disabled_accounts && IsDisabledAccount(record) &&
      !IsRecipientOnDisabledAccountByDesign(record)) {
    return {EntryOutcome::kDisabledAccount, collector.Take()};
  }
  return {EntryOutcome::kIncluded, collector.Take()};
}

absl::StatusOr<LdifLoadStats> LoadLdif(
    std::istream* in, std::string_view source_name,
    const AttributeMapping& mapping,
    absl::FunctionRef<void(std::string_view address)> sink) {
  LdifReader reader(in, std::string(source_name));
  LdifLoadStats stats;
  while (true) {
    absl::StatusOr<std::optional<LdifRecord>> record = reader.Next();
    if (!record.ok()) return record.status();
    if (!record->has_value()) break;
    ++stats.records;
    MappedEntry entry = MapEntry(**record, mapping);
    switch (entry.outcome) {
      case EntryOutcome::kIncluded:
        ++stats.included;
        for (const std::string& address : entry.addresses) sink(address);
        stats.addresses += entry.addresses.size();
        break;
      case EntryOutcome::kNoAddresses:
        ++stats.no_addresses;
        break;
      case EntryOutcome::kWrongObjectClass:
        ++stats.wrong_object_class;
        break;
      case EntryOutcome::kDisabledAccount:
        ++stats.disabled;
        break;
    }
  }
  return stats;
}

absl::StatusOr<LdifLoadStats> LoadLdifFile(
    const std::string& path, const AttributeMapping& mapping,
    absl::FunctionRef<void(std::string_view address)> sink) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("LDIF file ", path, " is a directory"));
  }
  absl::StatusOr<OpenedFile> file =
      OpenRegularFile("LDIF file", path, kMaxLdifFileBytes);
  if (absl::IsNotFound(file.status())) {
    return absl::NotFoundError(absl::StrCat("LDIF file ", path, " not found"));
  }
  if (!file.ok()) return file.status();
  FileStreamBuf buffer(*std::move(file), kMaxLdifFileBytes);
  std::istream in(&buffer);
  absl::StatusOr<LdifLoadStats> stats = LoadLdif(&in, path, mapping, sink);
  // The stream ends early on a read error or a file that grew past the
  // bound; either way what was parsed is not the whole file.
  if (buffer.error() != 0) {
    return absl::ErrnoToStatus(
        buffer.error(), absl::StrCat("LDIF file ", path, ": cannot read"));
  }
  if (buffer.exceeded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("LDIF file ", path, ": file grew past the ",
                     kMaxLdifFileBytes, " bytes allowed while being read"));
  }
  return stats;
}

}  // namespace rcptguard::ldif
