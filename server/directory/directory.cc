#include "server/directory/directory.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <forward_list>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/bytes.h"
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

std::string_view Directory::StripFor(int32_t domain_index,
                                     std::string_view local,
                                     uint64_t candidates) const {
  const Subaddressing& sub = subaddressing_[domain_index];
  if (sub.none || local.empty()) return local;
  if (!sub.ascii || local.front() == '"') {
    return address::StripSubaddress(
        local, domains_[domain_index].subaddress_delimiters);
  }
  // ASCII delimiters only: a byte test per octet (an ASCII byte never occurs
  // inside a UTF-8 sequence). As address::StripSubaddress, cut at the first
  // delimiter, unless that would leave nothing.
  auto is_delimiter = [&sub](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return ((sub.bits[c >> 6] >> (c & 63)) & 1) != 0;
  };
  if (candidates == ~uint64_t{0}) {
    for (size_t i = 0; i < local.size(); ++i) {
      if (is_delimiter(local[i])) return i == 0 ? local : local.substr(0, i);
    }
    return local;
  }
  // Only the candidate positions (usually none) can hold a delimiter.
  for (; candidates != 0; candidates &= candidates - 1) {
    const auto i = static_cast<size_t>(std::countr_zero(candidates));
    if (i >= local.size()) break;
    if (is_delimiter(local[i])) return i == 0 ? local : local.substr(0, i);
  }
  return local;
}

namespace {

// Room for one key to hash: any fast-path address (see
// address::NormalizeSimpleAddress), and most others.
constexpr size_t kKeyRoom = address::kSimpleAddressBuffer;

// Per-thread buffers of LookupBatch: one chunk's keys, exact and stripped.
// On the heap (32 KiB), made once per thread.
struct LookupScratch {
  char exact[Directory::kLookupChunk][kKeyRoom];
  char stripped[Directory::kLookupChunk][kKeyRoom];
};

LookupScratch& ThreadScratch() {
  thread_local const std::unique_ptr<LookupScratch> scratch =
      std::make_unique<LookupScratch>();
  return *scratch;
}

// a == b, inline: the domain memo compares every recipient's domain, and a
// call to memcmp costs more than the comparison of a short name.
inline bool SameBytes(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }
  for (size_t i = 0; i + 8 <= n; i += 8) {
    if (LoadU64(a.data() + i) != LoadU64(b.data() + i)) return false;
  }
  // The last 8 octets (overlapping what was compared) cover the rest.
  return LoadU64(a.data() + n - 8) == LoadU64(b.data() + n - 8);
}

// "local@domain" into `room` (kKeyRoom octets) when it fits, else into a new
// string of `overflow`. `local` may start at `room` itself.
std::string_view PlaceKey(std::string_view local, std::string_view domain,
                          char* room,
                          std::forward_list<std::string>& overflow) {
  const size_t size = local.size() + 1 + domain.size();
  if (size > kKeyRoom) {
    std::string& key = overflow.emplace_front();
    JoinAddress(local, domain, key);
    return key;
  }
  std::memmove(room, local.data(), local.size());
  room[local.size()] = '@';
  std::memcpy(room + local.size() + 1, domain.data(), domain.size());
  return std::string_view(room, size);
}

}  // namespace

void Directory::LookupBatch(absl::Span<const std::string_view> raw,
                            LookupResult* out) const {
  // Per chunk, two passes: (1) parse each address, resolve its domain, lay
  // out the keys to hash (exact and, if a subaddress is cut off, stripped),
  // hash them two at a time (SipHash24x2) and start each probe, which
  // prefetches its slots; (2) finish the probes, when most of those slots
  // have arrived in cache while the rest of the chunk was worked on.
  LookupScratch& scratch = ThreadScratch();
  std::string_view keys[2 * kLookupChunk];
  FingerprintSet::PendingProbe probes[2 * kLookupChunk];
  int32_t exact[kLookupChunk];     // index into keys, or -1: no probe
  int32_t stripped[kLookupChunk];  // index into keys, or -1: no second form
  std::forward_list<std::string> overflow;  // keys too long for the scratch
  std::string last_domain;
  int32_t last_d = -1;          // FindDomain(last_domain); "" is never a domain
  bool last_is_target = false;  // last_domain is a served name, no alias

  for (size_t base = 0; base < raw.size(); base += kLookupChunk) {
    const size_t m = std::min(kLookupChunk, raw.size() - base);
    size_t n = 0;       // keys laid out
    size_t hashed = 0;  // keys hashed, their probes started
    overflow.clear();
    for (size_t i = 0; i < m; ++i) {
      LookupResult& r = out[base + i];
      r.error.clear();
      r.domain_index = -1;
      r.fingerprint = 0;
      exact[i] = stripped[i] = -1;

      // The common form is normalized straight into the scratch, without
      // allocating; the rest goes through the full parser.
      char* const room = scratch.exact[i];
      std::string_view local, domain_name;
      size_t at = 0;
      uint64_t symbols = ~uint64_t{0};  // where a delimiter may be in `local`
      std::optional<address::Address> parsed;
      const size_t simple_len =
          address::NormalizeSimpleAddress(raw[base + i], room, &at, &symbols);
      if (simple_len != 0) {
        local = std::string_view(room, at);
        domain_name = std::string_view(room + at + 1, simple_len - at - 1);
      } else {
        absl::StatusOr<address::Address> full =
            address::ParseAddress(raw[base + i]);
        if (!full.ok()) {
          r.status = LookupStatus::kMalformed;
          r.error = std::string(full.status().message());
          continue;
        }
        parsed = *std::move(full);
        symbols = ~uint64_t{0};
        local = parsed->local;
        domain_name = parsed->domain;
      }
      // Recipients of one request mostly share a domain: remember the last.
      if (!SameBytes(domain_name, last_domain)) {
        last_domain.assign(domain_name);
        last_d = FindDomain(domain_name);
        last_is_target = last_d >= 0 && last_domain == domains_[last_d].name;
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
      const std::string& target = domains_[d].name;
      exact[i] = static_cast<int32_t>(n);
      if (simple_len != 0 && last_is_target) {
        keys[n++] = std::string_view(room, simple_len);  // already the key
      } else {
        // An alias (the key names the target) or a fully parsed address.
        keys[n++] = PlaceKey(local, target, room, overflow);
      }
      const std::string_view base_local = StripFor(d, local, symbols);
      if (base_local.size() != local.size()) {
        stripped[i] = static_cast<int32_t>(n);
        keys[n++] = PlaceKey(base_local, target, scratch.stripped[i], overflow);
      }
      // Hash as soon as two keys wait, so that the probes' loads spread
      // over the whole chunk rather than queue up behind each other.
      for (; hashed + 2 <= n; hashed += 2) {
        uint64_t two[2];
        SipHash24x2(key_, keys[hashed], keys[hashed + 1], two);
        probes[hashed] = fingerprints_.StartProbe(two[0]);
        probes[hashed + 1] = fingerprints_.StartProbe(two[1]);
      }
    }
    if (hashed < n) {
      probes[hashed] =
          fingerprints_.StartProbe(AddressFingerprint(key_, keys[hashed]));
    }
    // No branch on an answer here: a mispredicted one would stall the loads
    // still in flight behind it.
    bool found[2 * kLookupChunk];
    for (size_t k = 0; k < n; ++k) {
      found[k] = FingerprintSet::FinishProbe(probes[k]);
    }
    for (size_t i = 0; i < m; ++i) {
      if (exact[i] < 0) continue;
      if (found[exact[i]] || (stripped[i] >= 0 && found[stripped[i]])) {
        out[base + i].status = LookupStatus::kValid;
      }
      out[base + i].fingerprint =
          probes[stripped[i] >= 0 ? stripped[i] : exact[i]].key;
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
  if (parsed->domain != domains_[d].name) ++alias_addresses_[parsed->domain];
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

std::vector<AliasDomainAddresses> DirectoryBuilder::alias_domain_addresses()
    const {
  std::vector<AliasDomainAddresses> out;
  for (const auto& [alias, count] : alias_addresses_) {
    auto it = domain_index_.find(alias);
    out.push_back({alias,
                   it != domain_index_.end() ? domains_[it->second].name : "",
                   count});
  }
  std::sort(out.begin(), out.end(),
            [](const AliasDomainAddresses& a, const AliasDomainAddresses& b) {
              return a.alias < b.alias;
            });
  return out;
}

absl::StatusOr<std::shared_ptr<const Directory>> DirectoryBuilder::Build(
    DirectoryInfo info) && {
  info.alias_domain_addresses = alias_domain_addresses();
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
  dir->subaddressing_.reserve(domains_.size());
  for (const DomainPolicy& domain : domains_) {
    Directory::Subaddressing sub;
    sub.none = domain.subaddress_delimiters.empty();
    for (char c : domain.subaddress_delimiters) {
      const auto u = static_cast<unsigned char>(c);
      sub.ascii = sub.ascii && u < 0x80;
      sub.bits[u >> 6] |= uint64_t{1} << (u & 63);
    }
    dir->subaddressing_.push_back(sub);
  }
  dir->domains_ = std::move(domains_);
  dir->domain_index_ = std::move(domain_index_);
  dir->domain_counts_ = std::move(domain_counts);
  dir->fingerprints_ = std::move(fingerprints);
  dir->info_ = std::move(info);
  return std::shared_ptr<const Directory>(std::move(dir));
}

}  // namespace rcptguard::directory
