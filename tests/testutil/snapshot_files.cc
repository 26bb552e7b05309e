#include "tests/testutil/snapshot_files.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "server/directory/fingerprint_set.h"

namespace rcptguard::testing {

absl::Status WriteSnapshotFile(const std::string& path,
                               const directory::SipKey& key,
                               std::vector<directory::DomainPolicy> domains,
                               const std::vector<std::string>& addresses,
                               const snapshot::SnapshotMetadata& meta) {
  absl::StatusOr<directory::DirectoryBuilder> builder =
      directory::DirectoryBuilder::Create(key, std::move(domains));
  if (!builder.ok()) return builder.status();
  for (const std::string& address : addresses) {
    if (builder->AddAddress(address) !=
        directory::DirectoryBuilder::AddOutcome::kAdded) {
      return absl::InvalidArgumentError(
          absl::StrCat("not added as a new address: ", ToAbsl(address)));
    }
  }
  directory::DirectoryInfo info;
  info.version = meta.version;
  absl::StatusOr<std::shared_ptr<const directory::Directory>> dir =
      std::move(*builder).Build(info);
  if (!dir.ok()) return dir.status();
  return snapshot::WriteSnapshot(**dir, meta, path);
}

uint64_t SyntheticFingerprint(uint64_t i) {
  uint64_t z = i + 0x9e3779b97f4a7c15ULL;  // SplitMix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

absl::StatusOr<std::shared_ptr<const directory::Directory>> SyntheticDirectory(
    const directory::SipKey& key, std::vector<directory::DomainPolicy> domains,
    uint64_t n) {
  std::vector<uint64_t> fps(n);
  for (uint64_t i = 0; i < n; ++i) fps[i] = SyntheticFingerprint(i);
  directory::FingerprintSet set =
      directory::FingerprintSet::Build(std::move(fps));
  absl::StatusOr<directory::DirectoryBuilder> builder =
      directory::DirectoryBuilder::Create(key, std::move(domains));
  if (!builder.ok()) return builder.status();
  const uint64_t size = set.size();
  return std::move(*builder).BuildWithFingerprints(
      std::move(set), {size - size / 4, size / 4}, {});
}

}  // namespace rcptguard::testing
