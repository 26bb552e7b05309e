#include "server/directory_config/directory_config.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/strings.h"

namespace rcptguard::directory_config {

absl::StatusOr<directory::SipKey> ReadFingerprintKey(const std::string& path,
                                                     std::string_view what) {
  absl::StatusOr<std::string> read =
      ReadRegularFile(what, path, kMaxKeyFileBytes);
  if (absl::IsNotFound(read.status())) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", ToAbsl(what), " ", path));
  }
  if (!read.ok()) return read.status();
  const std::string& content = *read;
  if (content.size() == 16) return directory::SipKey::FromBytes(content);
  absl::string_view trimmed = absl::StripAsciiWhitespace(content);
  if (trimmed.size() == 32) {
    bool hex = true;
    for (char c : trimmed) hex = hex && absl::ascii_isxdigit(c);
    if (hex) {
      return directory::SipKey::FromBytes(absl::HexStringToBytes(trimmed));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(ToAbsl(what), " ", path,
                   ": expected 16 raw bytes or 32 hex digits, found ",
                   content.size(), " bytes"));
}

absl::StatusOr<directory::SipKey> LoadFingerprintKey(
    const v1::ServerConfig& config) {
  const std::string& path = config.fingerprint_key_file();
  if (path.empty()) return directory::SipKey::Random();
  return ReadFingerprintKey(path, "fingerprint key file");
}

std::vector<directory::DomainPolicy> DomainPolicies(
    const v1::ServerConfig& config) {
  std::vector<directory::DomainPolicy> policies;
  policies.reserve(config.domains_size());
  for (const v1::Domain& d : config.domains()) {
    directory::DomainPolicy p;
    p.name = d.name();
    p.mode = d.mode() == v1::DOMAIN_MODE_MONITOR
                 ? directory::DomainMode::kMonitor
                 : directory::DomainMode::kEnforce;
    p.subaddress_delimiters = d.subaddress_delimiters();
    p.aliases.assign(d.aliases().begin(), d.aliases().end());
    p.replies.valid = d.replies().valid();
    p.replies.unknown = d.replies().unknown();
    p.replies.not_served = d.replies().not_served();
    p.replies.malformed = d.replies().malformed();
    policies.push_back(std::move(p));
  }
  return policies;
}

ldif::AttributeMapping MappingFromProto(const v1::AttributeMapping& m) {
  ldif::AttributeMapping mapping;
  mapping.address_attributes.assign(m.address_attributes().begin(),
                                    m.address_attributes().end());
  mapping.proxy_attributes.assign(m.proxy_attributes().begin(),
                                  m.proxy_attributes().end());
  mapping.object_classes.assign(m.object_classes().begin(),
                                m.object_classes().end());
  mapping.active_directory_account_rules = m.active_directory_account_rules();
  return mapping;
}

}  // namespace rcptguard::directory_config
