// Snapshot files: the binary form in which a Directory travels from the
// machine that exports LDAP to every rcptguard server.
//
// A snapshot holds the served domains (in clear: they are public in DNS),
// per-domain address counts, and the directory's FingerprintSet exactly as it
// lies in memory: keyed SipHash fingerprints, never an address. The byte
// layout, versioning rules and guarantees are in docs/snapshot-format.md.
//
//   // Exporter:
//   SnapshotMetadata meta;
//   meta.source = "ldap://dc1.example.com base=dc=example,dc=com";
//   meta.version = "2026-11-29T04:00Z";
//   RG_RETURN_IF_ERROR(WriteSnapshot(*dir, meta, "/srv/rcptguard/dir.rgs"));
//   // Server:
//   RG_ASSIGN_OR_RETURN(LoadedSnapshot loaded,
//                       ReadSnapshot(path, key, DomainPolicies(config)));
//   handle.Replace(loaded.directory);
//
// Contract.
// - WriteSnapshot is atomic: it writes PATH.tmp.<pid>, fsyncs it, renames it
//   over PATH and fsyncs the folder. A reader sees the old file or the new
//   one, never part of one; on any failure (ENOSPC included) the temporary
//   file is removed and the old PATH is left untouched.
// - Readers open the path non-blocking and refuse anything but a regular
//   file (a FIFO fails at once instead of blocking the reload), through
//   OpenRegularFile (common/file.h).
// - Every reader checks, in this order: the file is not empty, the magic,
//   the format version (a newer major version is refused before anything
//   else is trusted), the file length against the length in the header
//   (truncation, or a file larger than it claims) and against
//   kMaxSnapshotBytes, the trailer's magic and file size (so that a file of
//   zeros or holes behind a plausible header is refused before its body is
//   read), the checksum over everything before the checksum field,
//   then every header field against fixed bounds (no allocation is sized by
//   an unchecked field), then (ReadSnapshot, and VerifySnapshot with a key)
//   the key id, and the slot layout in one pass (FingerprintSet::FromSlots).
//   Every error names the file: "snapshot PATH: ...". Codes: DataLoss for an
//   empty, truncated or corrupt file (a bad trailer included; empty and
//   truncated ones are told apart by SnapshotDamage below);
//   InvalidArgument for a file that is not a snapshot (or not a regular
//   file, or above kMaxSnapshotBytes) or whose checksummed content is
//   inconsistent (a writer bug); FailedPrecondition for a newer format
//   version or another key; the errno mapping (NotFound, PermissionDenied,
//   ...) for I/O errors.
// - The checksum (XXH64) detects corruption (bit rot, truncation, a botched
//   copy), not tampering: anyone who can write the file can fix it up.
// - What a server serves is defined by ITS configuration: ReadSnapshot builds
//   the directory from `served_domains` (names, aliases, modes, delimiters,
//   replies). The snapshot only contributes fingerprints and, per served
//   domain with the same (normalized) name, its address count; a served
//   domain missing from the snapshot gets count 0 and is listed in
//   LoadedSnapshot::missing_domains, so the caller's guard can refuse it.
//   Fingerprints are made from "local@target-name", so matching is by name
//   only: a domain the snapshot has as an alias does not count.
// - Loading does no per-entry work beyond one checksum pass and one layout
//   verification pass; the slot arrays are used in place.
//
// Thread safety: all functions are safe to call concurrently (concurrent
// WriteSnapshot calls in one process are serialized). The loaded Directory is
// immutable and shareable; it owns the memory its slots live in.
#ifndef RCPTGUARD_SERVER_SNAPSHOT_SNAPSHOT_FILE_H_
#define RCPTGUARD_SERVER_SNAPSHOT_SNAPSHOT_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/directory/directory.h"
#include "server/directory/siphash.h"

namespace rcptguard::snapshot {

// ---------------------------------------------------------------------------
// Format constants (docs/snapshot-format.md).

// The first 8 bytes of every snapshot. Never changes, whatever the version.
inline constexpr char kSnapshotMagic[8] = {'R', 'G', 'S',  'N',
                                           'A', 'P', '\0', '\1'};
// The first 8 bytes of the trailer.
inline constexpr char kTrailerMagic[8] = {'R', 'G', 'S', 'N',
                                          'E', 'N', 'D', '\0'};
// Major format version this code writes and the newest it reads. A change
// old readers would misread bumps it; readers refuse a newer one.
inline constexpr uint32_t kFormatVersion = 1;
// Minor version written: compatible additions (fields in reserved header
// space, bytes after the known metadata). Readers accept any minor version.
inline constexpr uint32_t kMinorVersion = 0;
// Size of the fixed header written by this version.
inline constexpr uint32_t kHeaderBytes = 128;
// The trailer: magic, file size, checksum.
inline constexpr uint64_t kTrailerBytes = 24;
// The slot arrays start at a multiple of this in the file (page aligned so
// the file can be mapped and the slots used in place).
inline constexpr uint64_t kSlotAlignment = 4096;

// Bounds that writers respect and readers enforce.
inline constexpr uint32_t kMaxHeaderBytes = 64 * 1024;
inline constexpr size_t kMaxSourceBytes = 4096;
inline constexpr size_t kMaxVersionBytes = 1024;
inline constexpr size_t kMaxDomains = 1 << 20;
inline constexpr size_t kMaxDomainNameBytes = 255;
inline constexpr size_t kMaxAliasesPerDomain = 1 << 16;
inline constexpr size_t kMaxDelimiterBytes = 64;
inline constexpr uint64_t kMaxMetadataBytes = uint64_t{256} << 20;
// The whole file: 16 GiB, about 1.7 billion addresses (100 M addresses make
// a 941 MB file). Readers refuse a header claiming more before reading the
// body, so a plausible header cannot make a server allocate without bound.
inline constexpr uint64_t kMaxSnapshotBytes = uint64_t{16} << 30;

// ---------------------------------------------------------------------------
// What a snapshot says about itself.

// Written into the header by WriteSnapshot.
struct SnapshotMetadata {
  // Where the addresses came from, e.g. "ldap://dc1.example.com base=...".
  std::string source;
  // The directory's version string (shown by Admin status, logged on load).
  std::string version;
  // When the source was read; nullopt: the time of writing.
  std::optional<absl::Time> created_at;
};

// One row of the snapshot's domain table, as the exporter's config had it.
struct SnapshotDomain {
  std::string name;
  std::vector<std::string> aliases;
  directory::DomainMode mode = directory::DomainMode::kEnforce;
  std::string subaddress_delimiters;
  uint64_t address_count = 0;

  friend bool operator==(const SnapshotDomain&,
                         const SnapshotDomain&) = default;
};

// Header and domain table of a verified snapshot.
struct SnapshotInfo {
  std::string path;  // as given to the reader (or the buffer's name)
  uint32_t format_version = 0;
  uint32_t minor_version = 0;
  uint64_t file_size = 0;
  absl::Time created_at;
  std::string source;
  std::string version;
  uint64_t key_id = 0;         // SipKey::Id() of the fingerprint key
  uint64_t address_count = 0;  // distinct fingerprints
  std::vector<SnapshotDomain> domains;
  int shard_bits = 0;
  uint64_t slot_count = 0;
  uint64_t checksum = 0;  // the verified XXH64 from the trailer

  // The row named `name` (exact, normalized), or null.
  const SnapshotDomain* FindDomain(std::string_view name) const;
};

// Where the slot arrays of a loaded directory live.
enum class SlotStorage {
  // Read in large blocks into anonymous memory backed by transparent huge
  // pages, checksummed block by block. The loaded directory no longer
  // depends on the file, and lookups pay fewer TLB misses. The default: see
  // docs/snapshot-format.md for the measurements.
  kHugePageCopy,
  // mmap(MAP_PRIVATE, PROT_READ) of the file, used in place: no copy, and
  // processes on one host share the page cache. The file must not be
  // modified in place while loaded (WriteSnapshot never does: it renames).
  kMappedFile,
};

struct ReadOptions {
  SlotStorage slot_storage = SlotStorage::kHugePageCopy;
  // Stored as the directory's DirectoryInfo::loaded_at; InfinitePast means
  // absl::Now() at load.
  absl::Time loaded_at = absl::InfinitePast();
};

struct LoadedSnapshot {
  // Serves `served_domains`; its DirectoryInfo carries the snapshot's version,
  // source and created-at time (built_at).
  std::shared_ptr<const directory::Directory> directory;
  SnapshotInfo info;
  // Names of served domains that the snapshot's domain table lacks (their
  // count is 0 and every address in them would be unknown).
  std::vector<std::string> missing_domains;
};

// ---------------------------------------------------------------------------
// Files.

// Writes `dir` with `meta` to `path` atomically (see the contract above).
// InvalidArgument if a field exceeds the format's bounds; otherwise errors
// name the path and the errno text.
absl::Status WriteSnapshot(const directory::Directory& dir,
                           const SnapshotMetadata& meta,
                           const std::string& path);

// Reads, verifies and loads the snapshot at `path` into a directory that
// serves `served_domains` (see the contract above). `key` must be the key
// the snapshot was made with (checked by id).
absl::StatusOr<LoadedSnapshot> ReadSnapshot(
    const std::string& path, const directory::SipKey& key,
    std::vector<directory::DomainPolicy> served_domains,
    const ReadOptions& options = {});

// Header and domain table, checksum verified; needs no key.
absl::StatusOr<SnapshotInfo> InspectSnapshot(const std::string& path);

// Every check ReadSnapshot makes (the key id only if `key` is given),
// without keeping a directory.
absl::Status VerifySnapshot(const std::string& path,
                            const std::optional<directory::SipKey>& key);

// What kind of damage a reader's DataLoss error describes, for reload
// reasons (metrics, logs, status): kDamageEmpty for a 0-byte file,
// kDamageTruncated for a file shorter than its header says (or one that
// shrank while being read: an interrupted copy, a full disk),
// kDamageCorrupt for any other DataLoss (bad trailer, checksum mismatch,
// a file longer than it claims); "" for a status that is not DataLoss.
inline constexpr std::string_view kDamageEmpty = "empty";
inline constexpr std::string_view kDamageTruncated = "truncated";
inline constexpr std::string_view kDamageCorrupt = "checksum";
std::string_view SnapshotDamage(const absl::Status& status);
// The absl::Status payload (type URL) in which readers mark an empty or
// truncated file's DataLoss error with kDamageEmpty or kDamageTruncated.
inline constexpr std::string_view kSnapshotDamagePayload =
    "type.rcptguard.dev/snapshot.damage";

// ---------------------------------------------------------------------------
// Buffers: the same format in memory, for tests, fakes and fuzzing. `name`
// stands for the path in messages.

// The bytes WriteSnapshot would write.
absl::StatusOr<std::string> EncodeSnapshot(const directory::Directory& dir,
                                           const SnapshotMetadata& meta);

// As ReadSnapshot; the directory shares ownership of `bytes`.
absl::StatusOr<LoadedSnapshot> ReadSnapshotFromBuffer(
    std::string_view name, std::shared_ptr<const std::string> bytes,
    const directory::SipKey& key,
    std::vector<directory::DomainPolicy> served_domains,
    absl::Time loaded_at = absl::InfinitePast());

// As InspectSnapshot.
absl::StatusOr<SnapshotInfo> InspectSnapshotBuffer(std::string_view name,
                                                   std::string_view bytes);

// ---------------------------------------------------------------------------
// The checksum: XXH64 with seed 0 (Yann Collet's xxHash, 64-bit variant),
// byte for byte, so `xxhsum -H1` over a snapshot's first file_size - 8 bytes
// prints the stored value. Four independent 64-bit multiply-rotate lanes:
// memory bandwidth bound (several GB/s on one core).
class Checksum {
 public:
  Checksum();
  void Update(const void* data, size_t size);
  void Update(std::string_view bytes) { Update(bytes.data(), bytes.size()); }
  // The checksum of everything passed to Update so far (does not reset).
  uint64_t Digest() const;

 private:
  uint64_t lanes_[4];
  uint64_t total_ = 0;
  unsigned char buffer_[32];
  size_t buffered_ = 0;
};

uint64_t ChecksumOf(std::string_view bytes);

}  // namespace rcptguard::snapshot

#endif  // RCPTGUARD_SERVER_SNAPSHOT_SNAPSHOT_FILE_H_
