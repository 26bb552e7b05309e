// libFuzzer target for the snapshot reader: any byte string, read as a
// snapshot file or buffer, must give a directory or an error that names the
// snapshot, never a crash, a hang, an out-of-bounds read or unbounded memory.
//
// Each input is tried three ways:
//   1. as is, from a buffer and from a file (a memfd, read by path through
//      /proc/self/fd, with both slot storages);
//   2. with the header's file size, the trailer's file size and the checksum
//      fixed up, so the fuzzer gets past the corruption checks into the
//      header bounds, the domain table and the slot layout.
// The seeds in tests/fuzz/corpus/snapshot/ are written by
//   RG_WRITE_SNAPSHOT_CORPUS=tests/fuzz/corpus/snapshot
//     build/tests/unit/snapshot/snapshot_file_test --gtest_filter='*FuzzSeeds*'
// (one command line)
// and are made with the key below.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/directory/directory.h"
#include "server/directory/siphash.h"
#include "server/snapshot/snapshot_file.h"

namespace {

using rcptguard::directory::Directory;
using rcptguard::directory::DomainPolicy;
using rcptguard::directory::LookupStatus;
using rcptguard::directory::SipKey;
namespace snap = rcptguard::snapshot;

void Check(bool ok) {
  if (!ok) std::abort();
}

constexpr SipKey kKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

std::vector<DomainPolicy> Served() {
  DomainPolicy com;
  com.name = "example.com";
  com.aliases = {"example.net"};
  com.subaddress_delimiters = "+";
  DomainPolicy org;
  org.name = "example.org";
  return {com, org};
}

void CheckError(const absl::Status& status, const std::string& name) {
  Check(!status.ok());
  const absl::StatusCode code = status.code();
  Check(code == absl::StatusCode::kInvalidArgument ||
        code == absl::StatusCode::kDataLoss ||
        code == absl::StatusCode::kFailedPrecondition);
  // "snapshot NAME: ..." or, for a key mismatch, "snapshot NAME was made...".
  Check(absl::StartsWith(status.message(), absl::StrCat("snapshot ", name)));
}

void CheckDirectory(const snap::LoadedSnapshot& loaded) {
  const Directory& dir = *loaded.directory;
  Check(dir.address_count() == loaded.info.address_count);
  Check(dir.domains().size() == 2);
  for (const char* q : {"a@example.com", "user1+x@example.net", "b@example.org",
                        "c@example.edu", "postmaster@example.org"}) {
    const LookupStatus status = dir.Lookup(q).status;
    Check(status != LookupStatus::kMalformed);
  }
  // Probe the whole key space: every shard, run ends and wraps.
  std::vector<uint64_t> fps;
  for (uint64_t i = 0; i < 256; ++i)
    fps.push_back(i * 0x0101010101010101ULL + i);
  fps.push_back(0);
  fps.push_back(~uint64_t{0});
  std::unique_ptr<bool[]> out(new bool[fps.size()]);
  dir.fingerprints().ContainsBatch(fps, out.get());
  for (uint64_t v : dir.fingerprints().all_slots()) {
    if (v != 0) Check(dir.fingerprints().Contains(v));
  }
}

void TryBuffer(const std::string& bytes) {
  absl::StatusOr<snap::SnapshotInfo> info =
      snap::InspectSnapshotBuffer("fuzz", bytes);
  if (!info.ok()) CheckError(info.status(), "fuzz");
  absl::StatusOr<snap::LoadedSnapshot> loaded = snap::ReadSnapshotFromBuffer(
      "fuzz", std::make_shared<const std::string>(bytes), kKey, Served());
  if (loaded.ok()) {
    Check(info.ok());
    CheckDirectory(*loaded);
  } else {
    CheckError(loaded.status(), "fuzz");
  }
}

// A memfd stands in for a file on disk.
void TryFile(const std::string& bytes) {
  static const int fd = memfd_create("snapshot_fuzz", MFD_CLOEXEC);
  Check(fd >= 0);
  Check(ftruncate(fd, 0) == 0);
  Check(pwrite(fd, bytes.data(), bytes.size(), 0) ==
        static_cast<ssize_t>(bytes.size()));
  const std::string path = absl::StrCat("/proc/self/fd/", fd);
  for (snap::SlotStorage storage :
       {snap::SlotStorage::kHugePageCopy, snap::SlotStorage::kMappedFile}) {
    snap::ReadOptions options;
    options.slot_storage = storage;
    absl::StatusOr<snap::LoadedSnapshot> loaded =
        snap::ReadSnapshot(path, kKey, Served(), options);
    if (loaded.ok()) {
      CheckDirectory(*loaded);
    } else {
      CheckError(loaded.status(), path);
    }
  }
  absl::Status verified = snap::VerifySnapshot(path, kKey);
  if (!verified.ok()) CheckError(verified, path);
}

// Makes the lengths and the checksum agree with the content.
std::string FixUp(std::string bytes) {
  const uint64_t size = bytes.size();
  if (size >= 24) std::memcpy(bytes.data() + 16, &size, 8);
  if (size >= 152) std::memcpy(bytes.data() + size - 16, &size, 8);
  if (size >= 8) {
    const uint64_t sum =
        snap::ChecksumOf(std::string_view(bytes).substr(0, size - 8));
    std::memcpy(bytes.data() + size - 8, &sum, 8);
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A snapshot is mostly slots; past this size inputs only cost time.
  if (size > (1u << 20)) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  TryBuffer(bytes);
  TryFile(bytes);
  TryBuffer(FixUp(bytes));
  return 0;
}
