// Internal to rg_snapshot, not part of its API (that is snapshot_file.h): the
// byte layout of the fixed header (docs/snapshot-format.md) and what the
// reader (snapshot_reader.cc) and the writer (snapshot_writer.cc) share: the
// checks made before the checksum and the parsing of a checksummed image.
//
// Thread safety: constants and pure functions, safe to call concurrently.
#ifndef RCPTGUARD_SERVER_SNAPSHOT_SNAPSHOT_FORMAT_H_
#define RCPTGUARD_SERVER_SNAPSHOT_SNAPSHOT_FORMAT_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "server/directory/fingerprint_set.h"
#include "server/snapshot/snapshot_file.h"

namespace rcptguard::snapshot {

static_assert(std::endian::native == std::endian::little,
              "the slot arrays are stored and served in host order, which "
              "the format defines as little-endian");

// Layout of the fixed header (docs/snapshot-format.md).

inline constexpr size_t kOffMagic = 0;
inline constexpr size_t kOffFormatVersion = 8;
inline constexpr size_t kOffMinorVersion = 12;
inline constexpr size_t kOffFileSize = 16;
inline constexpr size_t kOffHeaderSize = 24;
inline constexpr size_t kOffDomainCount = 28;
inline constexpr size_t kOffCreatedAt = 32;
inline constexpr size_t kOffKeyId = 40;
inline constexpr size_t kOffAddressCount = 48;
inline constexpr size_t kOffMetaOffset = 56;
inline constexpr size_t kOffMetaSize = 64;
inline constexpr size_t kOffShardBits = 72;
inline constexpr size_t kOffShardTableOffset = 80;
inline constexpr size_t kOffSlotsOffset = 88;
inline constexpr size_t kOffSlotCount = 96;
// Magic, format versions and file size: what is read before the checksum.
inline constexpr size_t kPreambleBytes = 24;
// One ShardExtent: slot_count, home_slots.
inline constexpr uint64_t kExtentBytes = 16;
// Smallest encoding of one domain row: name length, mode, delimiter length,
// alias count (4 bytes each) and the address count (8).
inline constexpr uint64_t kMinDomainRowBytes = 24;
inline constexpr uint32_t kModeEnforce = 0;
inline constexpr uint32_t kModeMonitor = 1;

// Large files are read (and written) in blocks of this size, checksummed
// while each block is still in cache.
inline constexpr size_t kIoBlockBytes = size_t{8} << 20;
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

inline uint64_t RoundUp(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

std::string Hex(uint64_t v);

// "snapshot NAME: " + parts.
template <typename... Args>
std::string Msg(std::string_view name, const Args&... args) {
  return absl::StrCat("snapshot ", ToAbsl(name), ": ", args...);
}

absl::Status ErrnoError(int err, std::string_view name, std::string_view what);

// A DataLoss error `message` marked with `damage` (kDamageEmpty or
// kDamageTruncated) for SnapshotDamage().
absl::Status DamagedError(std::string_view damage, std::string message);

// Checks made before the checksum.

// `head` holds the first min(file size, kHeaderBytes) bytes.
absl::Status CheckPreamble(std::string_view name, std::string_view head,
                           uint64_t file_bytes);

// The trailer's magic and its copy of the file size, checked before the body
// is read or checksummed: a file whose end is not a trailer (zeros, holes,
// an interrupted copy) is refused without reading gigabytes first.
absl::Status CheckTrailer(std::string_view name, std::string_view trailer,
                          uint64_t file_bytes);

absl::Status CompareChecksum(std::string_view name, uint64_t stored,
                             uint64_t computed);

// Parsing a checksummed image.

// A verified image, taken apart. `slots_at` is a byte offset into the image.
struct Parsed {
  SnapshotInfo info;
  std::vector<directory::FingerprintSet::ShardExtent> extents;
  uint64_t slots_at = 0;
};

// Parses `image` (the whole file, size and checksum already verified).
absl::StatusOr<Parsed> ParseImage(std::string_view name, std::string_view image,
                                  uint64_t checksum);

}  // namespace rcptguard::snapshot

#endif  // RCPTGUARD_SERVER_SNAPSHOT_SNAPSHOT_FORMAT_H_
