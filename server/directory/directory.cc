#include "server/directory/directory.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/address/address.h"

namespace rcptguard::directory {
namespace {

// This Abseil build's absl::string_view is its own type, not
// std::string_view; heterogeneous lookups need it spelled out.
absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// Builds "local@domain" into `out`, reusing its capacity.
void JoinAddress(std::string_view local, std::string_view domain,
                 std::string& out) {
  out.clear();
  out.reserve(local.size() + 1 + domain.size());
  out.append(local).append(1, '@').append(domain);
}

// A delimiter must be a character that can start a subaddress: not a
// control character, space, letter or digit (a likely typo such as "plus"),
// not '@', and not one that only appears inside quoted local parts. Bytes of
// UTF-8 characters pass; address::StripSubaddress matches them whole.
bool IsUsableDelimiter(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x80) return true;
  if (u <= 0x20 || u == 0x7f) return false;
  if (absl::ascii_isalnum(u)) return false;
  return c != '@' && c != '"' && c != '\\';
}

std::string DescribeChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u > 0x20 && u < 0x7f) return absl::StrCat("'", std::string(1, c), "'");
  return absl::StrFormat("0x%02x", u);
}

}  // namespace

uint64_t AddressFingerprint(const SipKey& key,
                            std::string_view normalized_address) {
  return SipHash24(key, normalized_address);
}

// ---------------------------------------------------------------------------
// Directory

int32_t Directory::FindDomain(std::string_view normalized_domain) const {
  auto it = domain_index_.find(AbslView(normalized_domain));
  return it == domain_index_.end() ? -1 : it->second;
}

uint64_t Directory::domain_address_count(size_t domain_index) const {
  return domain_index < domain_counts_.size() ? domain_counts_[domain_index]
                                              : 0;
}

LookupResult Directory::Lookup(std::string_view raw) const {
  LookupResult result;
  LookupBatch(absl::MakeConstSpan(&raw, 1), &result);
  return result;
}

void Directory::LookupBatch(absl::Span<const std::string_view> raw,
                            LookupResult* out) const {
  // Per chunk: parse and hash every address (up to two fingerprints each:
  // exact and subaddress-stripped), then probe all of them in one batch.
  uint64_t fps[2 * kLookupChunk];
  bool found[2 * kLookupChunk];
  int32_t exact[kLookupChunk];     // index into fps, or -1: no probe
  int32_t stripped[kLookupChunk];  // index into fps, or -1: no second form
  std::string scratch;
  std::string simple;
  std::string last_domain;
  int32_t last_d = -1;  // FindDomain(last_domain); "" is never a domain

  for (size_t base = 0; base < raw.size(); base += kLookupChunk) {
    const size_t m = std::min(kLookupChunk, raw.size() - base);
    size_t n = 0;
    for (size_t i = 0; i < m; ++i) {
      LookupResult& r = out[base + i];
      r.error.clear();
      r.domain_index = -1;
      exact[i] = stripped[i] = -1;

      // The common form is normalized in place, without allocating; the
      // rest goes through the full parser.
      std::string_view local, domain_name;
      size_t at = 0;
      std::optional<address::Address> parsed;
      if (address::NormalizeSimpleAddress(raw[base + i], &simple, &at)) {
        local = std::string_view(simple).substr(0, at);
        domain_name = std::string_view(simple).substr(at + 1);
      } else {
        absl::StatusOr<address::Address> full =
            address::ParseAddress(raw[base + i]);
        if (!full.ok()) {
          r.status = LookupStatus::kMalformed;
          r.error = std::string(full.status().message());
          continue;
        }
        parsed = *std::move(full);
        local = parsed->local;
        domain_name = parsed->domain;
      }
      // Recipients of one request mostly share a domain: remember the last.
      if (domain_name != last_domain) {
        last_domain.assign(domain_name);
        last_d = FindDomain(domain_name);
      }
      const int32_t d = last_d;
      if (d < 0) {
        r.status = LookupStatus::kNotServed;
        continue;
      }
      r.domain_index = d;
      if (address::IsPostmaster(local)) {
        r.status = LookupStatus::kValid;
        continue;
      }
      r.status = LookupStatus::kUnknown;  // until a probe finds it
      const DomainPolicy& domain = domains_[d];
      std::string_view joined = simple;  // already local@domain.name
      if (parsed.has_value() || domain_name != domain.name) {
        JoinAddress(local, domain.name, scratch);  // alias or full parse
        joined = scratch;
      }
      exact[i] = static_cast<int32_t>(n);
      fps[n++] = AddressFingerprint(key_, joined);
      if (!domain.subaddress_delimiters.empty()) {
        const std::string_view base_local =
            address::StripSubaddress(local, domain.subaddress_delimiters);
        if (base_local.size() != local.size()) {
          JoinAddress(base_local, domain.name, scratch);
          stripped[i] = static_cast<int32_t>(n);
          fps[n++] = AddressFingerprint(key_, scratch);
        }
      }
    }

    fingerprints_.ContainsBatch(absl::MakeConstSpan(fps, n), found);

    for (size_t i = 0; i < m; ++i) {
      if (exact[i] < 0) continue;
      if (found[exact[i]] || (stripped[i] >= 0 && found[stripped[i]])) {
        out[base + i].status = LookupStatus::kValid;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// DirectoryBuilder

absl::StatusOr<DirectoryBuilder> DirectoryBuilder::Create(
    SipKey key, std::vector<DomainPolicy> domains) {
  DirectoryBuilder builder;
  builder.key_ = key;

  // Served names first, so that an alias listed before the domain it
  // collides with is still reported as colliding with a served domain.
  for (size_t i = 0; i < domains.size(); ++i) {
    DomainPolicy& domain = domains[i];
    if (absl::StripAsciiWhitespace(domain.name).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("domains[", i, "]: name is empty"));
    }
    absl::StatusOr<std::string> name = address::NormalizeDomain(domain.name);
    if (!name.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "domain \"", domain.name, "\": ", name.status().message()));
    }
    domain.name = *std::move(name);
    if (!builder.domain_index_.emplace(domain.name, static_cast<int32_t>(i))
             .second) {
      return absl::InvalidArgumentError(
          absl::StrCat("domain \"", domain.name, "\" is listed twice"));
    }
    for (char c : domain.subaddress_delimiters) {
      if (!IsUsableDelimiter(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat("domain \"", domain.name,
                         "\": invalid subaddress delimiter ", DescribeChar(c)));
      }
    }
  }

  for (size_t i = 0; i < domains.size(); ++i) {
    DomainPolicy& domain = domains[i];
    for (std::string& alias : domain.aliases) {
      if (absl::StripAsciiWhitespace(alias).empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("domain \"", domain.name, "\": alias is empty"));
      }
      absl::StatusOr<std::string> name = address::NormalizeDomain(alias);
      if (!name.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("domain \"", domain.name, "\": alias \"", alias,
                         "\": ", name.status().message()));
      }
      alias = *std::move(name);
      auto [it, inserted] =
          builder.domain_index_.emplace(alias, static_cast<int32_t>(i));
      if (inserted) continue;
      const DomainPolicy& other = domains[it->second];
      if (other.name == alias) {
        return absl::InvalidArgumentError(
            absl::StrCat("domain \"", domain.name, "\": alias \"", alias,
                         "\" is a served domain"));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("domain \"", domain.name, "\": alias \"", alias,
                       "\" is already an alias of \"", other.name, "\""));
    }
  }

  builder.domain_counts_.assign(domains.size(), 0);
  builder.domains_ = std::move(domains);
  return builder;
}

DirectoryBuilder::AddOutcome DirectoryBuilder::AddAddress(std::string_view raw,
                                                          std::string* error) {
  absl::StatusOr<address::Address> parsed = address::ParseAddress(raw);
  if (!parsed.ok()) {
    if (error != nullptr) *error = std::string(parsed.status().message());
    return AddOutcome::kMalformed;
  }
  auto it = domain_index_.find(AbslView(parsed->domain));
  if (it == domain_index_.end()) return AddOutcome::kNotServed;
  const int32_t d = it->second;
  std::string joined;
  JoinAddress(parsed->local, domains_[d].name, joined);
  const uint64_t fp =
      FingerprintSet::Canonical(AddressFingerprint(key_, joined));
  if (!seen_.insert(fp).second) return AddOutcome::kDuplicate;
  ++domain_counts_[d];
  return AddOutcome::kAdded;
}

void DirectoryBuilder::AddFingerprint(size_t domain_index, uint64_t fp) {
  if (domain_index >= domains_.size()) return;
  if (seen_.insert(FingerprintSet::Canonical(fp)).second) {
    ++domain_counts_[domain_index];
  }
}

void DirectoryBuilder::Reserve(size_t addresses) { seen_.reserve(addresses); }

absl::StatusOr<std::shared_ptr<const Directory>> DirectoryBuilder::Build(
    DirectoryInfo info) && {
  std::vector<uint64_t> fps(seen_.begin(), seen_.end());
  seen_ = absl::flat_hash_set<uint64_t>();  // free it before the set grows
  FingerprintSet set = FingerprintSet::Build(std::move(fps));
  std::vector<uint64_t> counts = std::move(domain_counts_);
  return std::move(*this).BuildWithFingerprints(
      std::move(set), std::move(counts), std::move(info));
}

absl::StatusOr<std::shared_ptr<const Directory>>
DirectoryBuilder::BuildWithFingerprints(FingerprintSet fingerprints,
                                        std::vector<uint64_t> domain_counts,
                                        DirectoryInfo info) && {
  if (!seen_.empty()) {
    return absl::FailedPreconditionError(
        "BuildWithFingerprints called on a builder with added addresses");
  }
  if (domain_counts.size() != domains_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(domain_counts.size(), " domain counts for ",
                     domains_.size(), " domains"));
  }
  std::shared_ptr<Directory> dir(new Directory());
  dir->key_ = key_;
  dir->key_id_ = key_.Id();
  dir->domains_ = std::move(domains_);
  dir->domain_index_ = std::move(domain_index_);
  dir->domain_counts_ = std::move(domain_counts);
  dir->fingerprints_ = std::move(fingerprints);
  dir->info_ = std::move(info);
  return std::shared_ptr<const Directory>(std::move(dir));
}

}  // namespace rcptguard::directory
