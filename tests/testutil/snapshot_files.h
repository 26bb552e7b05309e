// Snapshot files for tests and benchmarks: a directory built from addresses
// or from synthetic fingerprints, written with snapshot::WriteSnapshot, so
// that no test carries its own copy of "build a directory, write it".
//
//   ASSERT_TRUE(WriteSnapshotFile(path, key, domains,
//                                 {"a@example.com", "b@example.com"}, meta)
//                   .ok());
//
// Contract: WriteSnapshotFile fails (and writes nothing) if the domains are
// invalid or an address is not added as a new one (malformed, duplicate or
// not served), so a test never serves fewer addresses than it listed.
// Synthetic fingerprints are a pure function of their index; they stand for
// no real address and are for measuring, not for lookups by address.
//
// Thread safety: functions only, safe to call concurrently (on different
// paths: WriteSnapshot serializes writers within the process).
#ifndef RCPTGUARD_TESTS_TESTUTIL_SNAPSHOT_FILES_H_
#define RCPTGUARD_TESTS_TESTUTIL_SNAPSHOT_FILES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/directory/directory.h"
#include "server/directory/siphash.h"
#include "server/snapshot/snapshot_file.h"

namespace rcptguard::testing {

// Builds a directory of `addresses` serving `domains` (its DirectoryInfo
// version being meta.version) and writes it to `path` with `meta`.
absl::Status WriteSnapshotFile(const std::string& path,
                               const directory::SipKey& key,
                               std::vector<directory::DomainPolicy> domains,
                               const std::vector<std::string>& addresses,
                               const snapshot::SnapshotMetadata& meta);

// The i-th synthetic fingerprint (SplitMix64 of i): distinct for distinct i.
uint64_t SyntheticFingerprint(uint64_t i);

// A directory of the fingerprints SyntheticFingerprint(0) ..
// SyntheticFingerprint(n - 1), serving exactly two `domains`: three quarters
// of the addresses are counted in the first, the rest in the second.
absl::StatusOr<std::shared_ptr<const directory::Directory>> SyntheticDirectory(
    const directory::SipKey& key, std::vector<directory::DomainPolicy> domains,
    uint64_t n);

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_TESTUTIL_SNAPSHOT_FILES_H_
