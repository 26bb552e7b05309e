// Writes a synthetic snapshot of N addresses for memory measurements
// (tests/bench/memory.sh): N pseudo-random fingerprints in example.com
// (three quarters) and example.org, the key in KEY_FILE (16 raw bytes).
// The fingerprints are not of real addresses: the file is for measuring
// what serving N addresses costs, not for lookups.
//
//   make_snapshot N OUT_FILE KEY_FILE
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "server/directory/directory.h"
#include "server/snapshot/snapshot_file.h"
#include "tests/testutil/snapshot_files.h"

namespace {

using rcptguard::directory::DomainPolicy;
using rcptguard::directory::SipKey;

int Fail(const std::string& what) {
  std::fprintf(stderr, "make_snapshot: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = 0;
  if (argc != 4 || !absl::SimpleAtoi(argv[1], &n) || n == 0 ||
      n > (uint64_t{1} << 33)) {
    return Fail("usage: make_snapshot N OUT_FILE KEY_FILE");
  }
  const SipKey key = SipKey::Random();
  {
    std::ofstream out(argv[3], std::ios::binary | std::ios::trunc);
    for (uint64_t part : {key.k0, key.k1}) {
      for (int b = 0; b < 8; ++b) out.put(static_cast<char>(part >> (8 * b)));
    }
    if (!out) return Fail(std::string("cannot write ") + argv[3]);
  }
  DomainPolicy com;
  com.name = "example.com";
  DomainPolicy org;
  org.name = "example.org";
  auto dir = rcptguard::testing::SyntheticDirectory(key, {com, org}, n);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  const uint64_t size = (*dir)->address_count();
  rcptguard::snapshot::SnapshotMetadata meta;
  meta.source = "make_snapshot";
  meta.version = "synthetic-" + std::to_string(n);
  absl::Status st = rcptguard::snapshot::WriteSnapshot(**dir, meta, argv[2]);
  if (!st.ok()) return Fail(std::string(st.message()));
  std::printf("%llu addresses written to %s\n",
              static_cast<unsigned long long>(size), argv[2]);
  return 0;
}
