#include "server/snapshot/snapshot_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/bytes.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace rcptguard::snapshot {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the slot arrays are stored and served in host order, which "
              "the format defines as little-endian");

using directory::Directory;
using directory::DirectoryBuilder;
using directory::DirectoryInfo;
using directory::DomainMode;
using directory::DomainPolicy;
using directory::FingerprintSet;
using directory::SipKey;

// ---------------------------------------------------------------------------
// Layout of the fixed header (docs/snapshot-format.md).

constexpr size_t kOffMagic = 0;
constexpr size_t kOffFormatVersion = 8;
constexpr size_t kOffMinorVersion = 12;
constexpr size_t kOffFileSize = 16;
constexpr size_t kOffHeaderSize = 24;
constexpr size_t kOffDomainCount = 28;
constexpr size_t kOffCreatedAt = 32;
constexpr size_t kOffKeyId = 40;
constexpr size_t kOffAddressCount = 48;
constexpr size_t kOffMetaOffset = 56;
constexpr size_t kOffMetaSize = 64;
constexpr size_t kOffShardBits = 72;
constexpr size_t kOffShardTableOffset = 80;
constexpr size_t kOffSlotsOffset = 88;
constexpr size_t kOffSlotCount = 96;
// Magic, format versions and file size: what is read before the checksum.
constexpr size_t kPreambleBytes = 24;
// One ShardExtent: slot_count, home_slots.
constexpr uint64_t kExtentBytes = 16;
// Smallest encoding of one domain row: name length, mode, delimiter length,
// alias count (4 bytes each) and the address count (8).
constexpr uint64_t kMinDomainRowBytes = 24;
constexpr uint32_t kModeEnforce = 0;
constexpr uint32_t kModeMonitor = 1;

// Large files are read (and written) in blocks of this size, checksummed
// while each block is still in cache.
constexpr size_t kIoBlockBytes = size_t{8} << 20;
constexpr size_t kHugePageBytes = size_t{2} << 20;

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

void PutU32(std::string& out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
void PutU64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void PutString(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}
void StoreU32(std::string& out, size_t at, uint32_t v) {
  std::memcpy(out.data() + at, &v, 4);
}
void StoreU64(std::string& out, size_t at, uint64_t v) {
  std::memcpy(out.data() + at, &v, 8);
}

std::string Hex(uint64_t v) { return absl::StrFormat("0x%016x", v); }

// "snapshot NAME: " + parts.
template <typename... Args>
std::string Msg(std::string_view name, const Args&... args) {
  return absl::StrCat("snapshot ", ToAbsl(name), ": ", args...);
}

// ---------------------------------------------------------------------------
// Checks made before the checksum.

// `head` holds the first min(file size, kHeaderBytes) bytes.
absl::Status CheckPreamble(std::string_view name, std::string_view head,
                           uint64_t file_bytes) {
  if (file_bytes == 0) return absl::DataLossError(Msg(name, "file is empty"));
  const size_t magic_bytes = std::min(head.size(), sizeof(kSnapshotMagic));
  if (std::memcmp(head.data() + kOffMagic, kSnapshotMagic, magic_bytes) != 0) {
    return absl::InvalidArgumentError(
        Msg(name, "not an rcptguard snapshot (bad magic)"));
  }
  if (file_bytes < kPreambleBytes) {
    return absl::DataLossError(Msg(name, "truncated: file has ", file_bytes,
                                   " bytes, less than a snapshot header (",
                                   kHeaderBytes, ")"));
  }
  const uint32_t version = LoadU32(head.data() + kOffFormatVersion);
  if (version == 0) {
    return absl::InvalidArgumentError(Msg(name, "format version 0 is invalid"));
  }
  if (version > kFormatVersion) {
    return absl::FailedPreconditionError(
        Msg(name, "format version ", version,
            " is newer than this server supports (", kFormatVersion, ")"));
  }
  const uint64_t stated = LoadU64(head.data() + kOffFileSize);
  if (file_bytes < stated) {
    return absl::DataLossError(Msg(name, "truncated: file has ", file_bytes,
                                   " bytes, header says ", stated));
  }
  if (file_bytes > stated) {
    return absl::DataLossError(Msg(name, "size mismatch: file has ", file_bytes,
                                   " bytes, header says ", stated));
  }
  if (stated < kHeaderBytes + kTrailerBytes) {
    return absl::InvalidArgumentError(Msg(name, "header: file size ", stated,
                                          " is below the minimum ",
                                          kHeaderBytes + kTrailerBytes));
  }
  if (stated > kMaxSnapshotBytes) {
    return absl::InvalidArgumentError(Msg(name, "header: file size ", stated,
                                          " is above the maximum ",
                                          kMaxSnapshotBytes));
  }
  return absl::OkStatus();
}

// The trailer's magic and its copy of the file size, checked before the body
// is read or checksummed: a file whose end is not a trailer (zeros, holes,
// an interrupted copy) is refused without reading gigabytes first.
absl::Status CheckTrailer(std::string_view name, std::string_view trailer,
                          uint64_t file_bytes) {
  if (std::memcmp(trailer.data(), kTrailerMagic, sizeof(kTrailerMagic)) != 0) {
    return absl::DataLossError(
        Msg(name, "trailer: bad magic (the file is corrupt or incomplete)"));
  }
  const uint64_t stated = LoadU64(trailer.data() + 8);
  if (stated != file_bytes) {
    return absl::DataLossError(Msg(name, "trailer: file size ", stated,
                                   " differs from the header's ", file_bytes));
  }
  return absl::OkStatus();
}

absl::Status CompareChecksum(std::string_view name, uint64_t stored,
                             uint64_t computed) {
  if (stored == computed) return absl::OkStatus();
  return absl::DataLossError(Msg(name, "checksum mismatch: stored ",
                                 Hex(stored), ", computed ", Hex(computed),
                                 " (the file is corrupt)"));
}

// ---------------------------------------------------------------------------
// Parsing a checksummed image.

// Bounds-checked reads from the metadata section.
class MetaReader {
 public:
  MetaReader(std::string_view name, std::string_view bytes)
      : name_(name), bytes_(bytes) {}

  size_t remaining() const { return bytes_.size() - pos_; }

  absl::Status U32(std::string_view what, uint32_t* out) {
    if (remaining() < 4) return Short(what);
    *out = LoadU32(bytes_.data() + pos_);
    pos_ += 4;
    return absl::OkStatus();
  }
  absl::Status U64(std::string_view what, uint64_t* out) {
    if (remaining() < 8) return Short(what);
    *out = LoadU64(bytes_.data() + pos_);
    pos_ += 8;
    return absl::OkStatus();
  }
  // A length-prefixed string of at most `max` bytes.
  absl::Status String(std::string_view what, size_t max, std::string* out) {
    uint32_t size = 0;
    RG_RETURN_IF_ERROR(U32(what, &size));
    if (size > max) {
      return absl::InvalidArgumentError(Msg(name_, "metadata: ", ToAbsl(what),
                                            " is ", size, " bytes, at most ",
                                            max, " allowed"));
    }
    if (remaining() < size) return Short(what);
    out->assign(bytes_.data() + pos_, size);
    pos_ += size;
    return absl::OkStatus();
  }

 private:
  absl::Status Short(std::string_view what) const {
    return absl::InvalidArgumentError(Msg(name_, "metadata: ", ToAbsl(what),
                                          " runs past the metadata section"));
  }

  std::string_view name_;
  std::string_view bytes_;
  size_t pos_ = 0;
};

absl::Status ParseDomains(std::string_view name, MetaReader& in,
                          uint32_t domain_count,
                          std::vector<SnapshotDomain>* out) {
  if (domain_count > kMaxDomains ||
      uint64_t{domain_count} * kMinDomainRowBytes > in.remaining()) {
    return absl::InvalidArgumentError(
        Msg(name, "header: ", domain_count,
            " domains do not fit in the metadata section"));
  }
  out->reserve(domain_count);
  absl::flat_hash_map<std::string, size_t> seen;
  for (uint32_t i = 0; i < domain_count; ++i) {
    SnapshotDomain d;
    const std::string where = absl::StrCat("domain ", i);
    RG_RETURN_IF_ERROR(
        in.String(where + " name", kMaxDomainNameBytes, &d.name));
    if (d.name.empty()) {
      return absl::InvalidArgumentError(
          Msg(name, "metadata: ", where, " has an empty name"));
    }
    uint32_t mode = 0;
    RG_RETURN_IF_ERROR(in.U32(where + " mode", &mode));
    if (mode != kModeEnforce && mode != kModeMonitor) {
      return absl::InvalidArgumentError(Msg(name, "metadata: domain \"", d.name,
                                            "\" has unknown mode ", mode));
    }
    d.mode = mode == kModeMonitor ? DomainMode::kMonitor : DomainMode::kEnforce;
    RG_RETURN_IF_ERROR(in.String(where + " delimiters", kMaxDelimiterBytes,
                                 &d.subaddress_delimiters));
    uint32_t aliases = 0;
    RG_RETURN_IF_ERROR(in.U32(where + " alias count", &aliases));
    if (aliases > kMaxAliasesPerDomain ||
        uint64_t{aliases} * 4 > in.remaining()) {
      return absl::InvalidArgumentError(Msg(name, "metadata: domain \"", d.name,
                                            "\" lists ", aliases,
                                            " aliases, more than fit"));
    }
    d.aliases.resize(aliases);
    for (uint32_t a = 0; a < aliases; ++a) {
      RG_RETURN_IF_ERROR(in.String(absl::StrCat(where, " alias ", a),
                                   kMaxDomainNameBytes, &d.aliases[a]));
    }
    RG_RETURN_IF_ERROR(in.U64(where + " address count", &d.address_count));
    if (!seen.emplace(d.name, i).second) {
      return absl::InvalidArgumentError(
          Msg(name, "metadata: domain \"", d.name, "\" is listed twice"));
    }
    out->push_back(std::move(d));
  }
  return absl::OkStatus();
}

// A verified image, taken apart. `slots_at` is a byte offset into the image.
struct Parsed {
  SnapshotInfo info;
  std::vector<FingerprintSet::ShardExtent> extents;
  uint64_t slots_at = 0;
};

// Parses `image` (the whole file, size and checksum already verified).
absl::StatusOr<Parsed> ParseImage(std::string_view name, std::string_view image,
                                  uint64_t checksum) {
  const char* h = image.data();
  const uint64_t size = image.size();
  auto bad = [&](auto... args) {
    return absl::InvalidArgumentError(Msg(name, "header: ", args...));
  };

  // The trailer was checked with the preamble (CheckTrailer).
  const uint64_t body_end = size - kTrailerBytes;  // end of the slots

  Parsed p;
  SnapshotInfo& info = p.info;
  info.path = std::string(name);
  info.format_version = LoadU32(h + kOffFormatVersion);
  info.minor_version = LoadU32(h + kOffMinorVersion);
  info.file_size = size;
  info.checksum = checksum;

  const uint32_t header_size = LoadU32(h + kOffHeaderSize);
  if (header_size < kHeaderBytes || header_size > kMaxHeaderBytes ||
      header_size > body_end) {
    return bad("header size ", header_size, " is outside [", kHeaderBytes, ", ",
               kMaxHeaderBytes, "]");
  }
  const uint32_t domain_count = LoadU32(h + kOffDomainCount);
  info.created_at =
      absl::FromUnixNanos(static_cast<int64_t>(LoadU64(h + kOffCreatedAt)));
  info.key_id = LoadU64(h + kOffKeyId);
  info.address_count = LoadU64(h + kOffAddressCount);

  // Sections follow each other in this order, without overlap.
  const uint64_t meta_offset = LoadU64(h + kOffMetaOffset);
  const uint64_t meta_size = LoadU64(h + kOffMetaSize);
  const uint32_t shard_bits = LoadU32(h + kOffShardBits);
  const uint64_t table_offset = LoadU64(h + kOffShardTableOffset);
  const uint64_t slots_offset = LoadU64(h + kOffSlotsOffset);
  const uint64_t slot_count = LoadU64(h + kOffSlotCount);
  if (meta_offset < header_size || meta_offset > body_end) {
    return bad("metadata offset ", meta_offset, " is out of bounds");
  }
  if (meta_size > kMaxMetadataBytes || meta_size > body_end - meta_offset) {
    return bad("metadata size ", meta_size, " is out of bounds");
  }
  if (shard_bits > static_cast<uint32_t>(FingerprintSet::kMaxShardBits)) {
    return bad("shard_bits ", shard_bits, " is outside [0, ",
               FingerprintSet::kMaxShardBits, "]");
  }
  const uint64_t shard_count = uint64_t{1} << shard_bits;
  if (table_offset % 8 != 0 || table_offset < meta_offset + meta_size ||
      table_offset > body_end ||
      shard_count * kExtentBytes > body_end - table_offset) {
    return bad("shard table offset ", table_offset, " is out of bounds");
  }
  if (slots_offset % 8 != 0 ||
      slots_offset < table_offset + shard_count * kExtentBytes ||
      slots_offset > body_end) {
    return bad("slots offset ", slots_offset, " is out of bounds");
  }
  if ((body_end - slots_offset) % 8 != 0 ||
      slot_count != (body_end - slots_offset) / 8) {
    return bad("slot count ", slot_count, " does not match the ",
               body_end - slots_offset, " bytes of slots");
  }
  info.shard_bits = static_cast<int>(shard_bits);
  info.slot_count = slot_count;
  p.slots_at = slots_offset;

  MetaReader meta(name, image.substr(meta_offset, meta_size));
  RG_RETURN_IF_ERROR(meta.String("source", kMaxSourceBytes, &info.source));
  RG_RETURN_IF_ERROR(meta.String("version", kMaxVersionBytes, &info.version));
  RG_RETURN_IF_ERROR(ParseDomains(name, meta, domain_count, &info.domains));
  // Later minor versions may append to the section; this one must not.
  if (info.minor_version <= kMinorVersion && meta.remaining() != 0) {
    return absl::InvalidArgumentError(Msg(name, "metadata: ", meta.remaining(),
                                          " bytes after the domain table"));
  }

  p.extents.resize(shard_count);
  const char* table = h + table_offset;
  for (uint64_t s = 0; s < shard_count; ++s) {
    p.extents[s].slot_count = LoadU64(table + s * kExtentBytes);
    p.extents[s].home_slots = LoadU64(table + s * kExtentBytes + 8);
  }
  return p;
}

absl::Status CheckKey(std::string_view name, const SnapshotInfo& info,
                      const SipKey& key) {
  const uint64_t ours = key.Id();
  if (info.key_id == ours) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("snapshot ", ToAbsl(name), " was made with key id ",
                   Hex(info.key_id), ", this server's key id is ", Hex(ours)));
}

// Serves the slots of `image` (which `keep_alive` owns) after verifying
// their layout and count.
absl::StatusOr<FingerprintSet> MakeSet(std::string_view name,
                                       std::string_view image, const Parsed& p,
                                       std::shared_ptr<const void> keep_alive) {
  const char* at = image.data() + p.slots_at;
  absl::Span<const uint64_t> slots;
  if (reinterpret_cast<uintptr_t>(at) % alignof(uint64_t) == 0) {
    slots = absl::MakeConstSpan(reinterpret_cast<const uint64_t*>(at),
                                p.info.slot_count);
  } else {
    // Only a caller's buffer can be misaligned; files are mapped or read to
    // page-aligned memory.
    auto copy = std::make_shared<std::vector<uint64_t>>(p.info.slot_count);
    std::memcpy(copy->data(), at, p.info.slot_count * sizeof(uint64_t));
    slots = absl::MakeConstSpan(*copy);
    keep_alive = std::move(copy);
  }
  absl::StatusOr<FingerprintSet> set = FingerprintSet::FromSlots(
      p.info.shard_bits, p.extents, slots, std::move(keep_alive));
  if (!set.ok()) {
    return absl::InvalidArgumentError(Msg(name, set.status().message()));
  }
  if (set->size() != p.info.address_count) {
    return absl::InvalidArgumentError(
        Msg(name, "header says ", p.info.address_count,
            " addresses, the slots hold ", set->size()));
  }
  return set;
}

absl::StatusOr<LoadedSnapshot> Assemble(std::string_view name, Parsed p,
                                        FingerprintSet set,
                                        DirectoryBuilder builder,
                                        absl::Time loaded_at) {
  absl::flat_hash_map<std::string, uint64_t> counts;
  counts.reserve(p.info.domains.size());
  for (const SnapshotDomain& d : p.info.domains) {
    counts.emplace(d.name, d.address_count);
  }
  LoadedSnapshot loaded;
  std::vector<uint64_t> domain_counts;
  domain_counts.reserve(builder.domains().size());
  for (const DomainPolicy& d : builder.domains()) {
    auto it = counts.find(d.name);
    if (it == counts.end()) {
      domain_counts.push_back(0);
      loaded.missing_domains.push_back(d.name);
    } else {
      domain_counts.push_back(it->second);
    }
  }
  DirectoryInfo info;
  info.version = p.info.version;
  info.source = p.info.source;
  info.built_at = p.info.created_at;
  info.loaded_at = loaded_at == absl::InfinitePast() ? absl::Now() : loaded_at;
  absl::StatusOr<std::shared_ptr<const Directory>> dir =
      std::move(builder).BuildWithFingerprints(
          std::move(set), std::move(domain_counts), std::move(info));
  if (!dir.ok()) {
    return absl::Status(dir.status().code(), Msg(name, dir.status().message()));
  }
  loaded.directory = *std::move(dir);
  loaded.info = std::move(p.info);
  return loaded;
}

// ---------------------------------------------------------------------------
// Files.

absl::Status ErrnoError(int err, std::string_view name, std::string_view what) {
  return absl::ErrnoToStatus(err, Msg(name, ToAbsl(what)));
}

// Reads exactly `size` bytes at `offset`; DataLoss if the file got shorter.
absl::Status PreadAll(int fd, std::string_view name, char* out, size_t size,
                      uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, name, "cannot read");
    }
    if (n == 0) {
      return absl::DataLossError(Msg(name, "file shrank while being read"));
    }
    out += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

int WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, std::min<size_t>(size, 1u << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// Anonymous memory of at least `size` bytes, 2 MiB aligned and advised onto
// transparent huge pages when large; owned by the returned pointer.
absl::StatusOr<std::pair<std::shared_ptr<const void>, char*>> AllocateImage(
    std::string_view name, size_t size) {
  const size_t mapped = RoundUp(std::max<size_t>(size, 1), 4096);
  const bool huge = mapped >= kHugePageBytes;
  const size_t reserve = huge ? mapped + kHugePageBytes : mapped;
  void* raw = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    return ErrnoError(errno, name,
                      absl::StrCat("cannot allocate ", size, " bytes"));
  }
  char* base = static_cast<char*>(raw);
  if (huge) {
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = RoundUp(start, kHugePageBytes);
    const size_t head = aligned - start;
    const size_t tail = reserve - head - mapped;
    if (head > 0) ::munmap(raw, head);
    if (tail > 0) ::munmap(reinterpret_cast<char*>(aligned + mapped), tail);
    base = reinterpret_cast<char*>(aligned);
    ::madvise(base, mapped, MADV_HUGEPAGE);  // a hint; failure is harmless
  }
  std::shared_ptr<const void> owner(base, [mapped](const void* p) {
    ::munmap(const_cast<void*>(p), mapped);
  });
  return std::make_pair(std::move(owner), base);
}

// A whole snapshot file in memory, preamble and checksum verified.
struct Image {
  std::string_view bytes;
  std::shared_ptr<const void> keep_alive;
  uint64_t checksum = 0;
};

absl::StatusOr<Image> LoadImage(const std::string& path, SlotStorage storage) {
  // Non-blocking open and S_ISREG on the descriptor: a FIFO at the path
  // must fail here, not block a reload (and shutdown behind it) forever.
  // The size bound is checked against the header below, with a message
  // that names both.
  RG_ASSIGN_OR_RETURN(
      OpenedFile file,
      OpenRegularFile("snapshot", path, std::numeric_limits<uint64_t>::max()));
  const UniqueFd& fd = file.fd;
  const uint64_t size = file.size;
  char head[kHeaderBytes];
  const size_t head_bytes = std::min<uint64_t>(size, kHeaderBytes);
  RG_RETURN_IF_ERROR(PreadAll(fd.get(), path, head, head_bytes, 0));
  RG_RETURN_IF_ERROR(
      CheckPreamble(path, std::string_view(head, head_bytes), size));
  // The trailer, before the body: a file of zeros or holes behind a
  // plausible header is refused after 24 bytes instead of being read whole
  // (gigabytes) for the checksum to reject it.
  char tail[kTrailerBytes];
  RG_RETURN_IF_ERROR(
      PreadAll(fd.get(), path, tail, kTrailerBytes, size - kTrailerBytes));
  RG_RETURN_IF_ERROR(
      CheckTrailer(path, std::string_view(tail, kTrailerBytes), size));
  const uint64_t summed = size - sizeof(uint64_t);  // all but the checksum

  Image image;
  if (storage == SlotStorage::kMappedFile) {
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE,
                       fd.get(), 0);
    if (map == MAP_FAILED) return ErrnoError(errno, path, "cannot map");
    image.keep_alive = std::shared_ptr<const void>(
        map, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
    image.bytes = std::string_view(static_cast<const char*>(map), size);
    image.checksum = ChecksumOf(image.bytes.substr(0, summed));
  } else {
    RG_ASSIGN_OR_RETURN(auto buffer, AllocateImage(path, size));
    char* base = buffer.second;
    Checksum sum;
    for (uint64_t at = 0; at < size; at += kIoBlockBytes) {
      const size_t n = std::min<uint64_t>(kIoBlockBytes, size - at);
      RG_RETURN_IF_ERROR(PreadAll(fd.get(), path, base + at, n, at));
      if (at < summed)
        sum.Update(base + at, std::min<uint64_t>(n, summed - at));
    }
    // The image is never written again; make that a promise.
    ::mprotect(base, RoundUp(size, 4096), PROT_READ);
    image.keep_alive = std::move(buffer.first);
    image.bytes = std::string_view(base, size);
    image.checksum = sum.Digest();
  }
  RG_RETURN_IF_ERROR(CompareChecksum(path, LoadU64(image.bytes.data() + summed),
                                     image.checksum));
  return image;
}

// Verifies the preamble and checksum of an in-memory image.
absl::StatusOr<uint64_t> CheckBuffer(std::string_view name,
                                     std::string_view bytes) {
  RG_RETURN_IF_ERROR(CheckPreamble(
      name, bytes.substr(0, std::min<size_t>(bytes.size(), kHeaderBytes)),
      bytes.size()));
  RG_RETURN_IF_ERROR(CheckTrailer(
      name, bytes.substr(bytes.size() - kTrailerBytes), bytes.size()));
  const size_t summed = bytes.size() - sizeof(uint64_t);
  const uint64_t computed = ChecksumOf(bytes.substr(0, summed));
  RG_RETURN_IF_ERROR(
      CompareChecksum(name, LoadU64(bytes.data() + summed), computed));
  return computed;
}

absl::StatusOr<DirectoryBuilder> CreateBuilder(
    std::string_view name, const SipKey& key,
    std::vector<DomainPolicy> served_domains) {
  absl::StatusOr<DirectoryBuilder> builder =
      DirectoryBuilder::Create(key, std::move(served_domains));
  if (!builder.ok()) {
    return absl::Status(
        builder.status().code(),
        Msg(name, "served domains: ", builder.status().message()));
  }
  return builder;
}

// ---------------------------------------------------------------------------
// Encoding.

uint32_t ModeCode(DomainMode mode) {
  return mode == DomainMode::kMonitor ? kModeMonitor : kModeEnforce;
}

// Everything before the slots: header, metadata, shard table, padding.
absl::StatusOr<std::string> EncodeHead(std::string_view name,
                                       const Directory& dir,
                                       const SnapshotMetadata& meta,
                                       uint64_t* file_size) {
  auto too_big = [&](auto... args) {
    return absl::InvalidArgumentError(Msg(name, "cannot write: ", args...));
  };
  if (meta.source.size() > kMaxSourceBytes) {
    return too_big("source is ", meta.source.size(), " bytes, at most ",
                   kMaxSourceBytes, " allowed");
  }
  if (meta.version.size() > kMaxVersionBytes) {
    return too_big("version is ", meta.version.size(), " bytes, at most ",
                   kMaxVersionBytes, " allowed");
  }
  const std::vector<DomainPolicy>& domains = dir.domains();
  if (domains.size() > kMaxDomains) {
    return too_big(domains.size(), " domains, at most ", kMaxDomains);
  }
  std::string m;
  PutString(m, meta.source);
  PutString(m, meta.version);
  for (size_t i = 0; i < domains.size(); ++i) {
    const DomainPolicy& d = domains[i];
    if (d.name.empty() || d.name.size() > kMaxDomainNameBytes ||
        d.subaddress_delimiters.size() > kMaxDelimiterBytes ||
        d.aliases.size() > kMaxAliasesPerDomain) {
      return too_big("domain \"", d.name,
                     "\" exceeds the format's bounds (name, delimiters or "
                     "alias count)");
    }
    PutString(m, d.name);
    PutU32(m, ModeCode(d.mode));
    PutString(m, d.subaddress_delimiters);
    PutU32(m, static_cast<uint32_t>(d.aliases.size()));
    for (const std::string& alias : d.aliases) {
      if (alias.empty() || alias.size() > kMaxDomainNameBytes) {
        return too_big("domain \"", d.name, "\": alias \"", alias,
                       "\" exceeds the format's bounds");
      }
      PutString(m, alias);
    }
    PutU64(m, dir.domain_address_count(i));
  }
  if (m.size() > kMaxMetadataBytes) {
    return too_big("metadata is ", m.size(), " bytes, at most ",
                   kMaxMetadataBytes);
  }

  const FingerprintSet& set = dir.fingerprints();
  const uint64_t shard_count = set.shard_count();
  const uint64_t meta_offset = kHeaderBytes;
  const uint64_t table_offset = RoundUp(meta_offset + m.size(), 8);
  const uint64_t slots_offset =
      RoundUp(table_offset + shard_count * kExtentBytes, kSlotAlignment);
  const uint64_t slot_count = set.all_slots().size();
  *file_size = slots_offset + slot_count * sizeof(uint64_t) + kTrailerBytes;
  if (*file_size > kMaxSnapshotBytes) {
    return too_big("the file would be ", *file_size, " bytes, at most ",
                   kMaxSnapshotBytes);
  }

  std::string head(slots_offset, '\0');
  std::memcpy(head.data() + kOffMagic, kSnapshotMagic, sizeof(kSnapshotMagic));
  StoreU32(head, kOffFormatVersion, kFormatVersion);
  StoreU32(head, kOffMinorVersion, kMinorVersion);
  StoreU64(head, kOffFileSize, *file_size);
  StoreU32(head, kOffHeaderSize, kHeaderBytes);
  StoreU32(head, kOffDomainCount, static_cast<uint32_t>(domains.size()));
  StoreU64(head, kOffCreatedAt,
           static_cast<uint64_t>(
               absl::ToUnixNanos(meta.created_at.value_or(absl::Now()))));
  StoreU64(head, kOffKeyId, dir.key_id());
  StoreU64(head, kOffAddressCount, set.size());
  StoreU64(head, kOffMetaOffset, meta_offset);
  StoreU64(head, kOffMetaSize, m.size());
  StoreU32(head, kOffShardBits, static_cast<uint32_t>(set.shard_bits()));
  StoreU64(head, kOffShardTableOffset, table_offset);
  StoreU64(head, kOffSlotsOffset, slots_offset);
  StoreU64(head, kOffSlotCount, slot_count);
  std::memcpy(head.data() + meta_offset, m.data(), m.size());
  for (uint64_t s = 0; s < shard_count; ++s) {
    const FingerprintSet::ShardExtent e = set.shard_extent(s);
    StoreU64(head, table_offset + s * kExtentBytes, e.slot_count);
    StoreU64(head, table_offset + s * kExtentBytes + 8, e.home_slots);
  }
  return head;
}

// Trailer magic and size; the caller appends the checksum.
std::string TrailerStart(uint64_t file_size) {
  std::string t(kTrailerMagic, sizeof(kTrailerMagic));
  PutU64(t, file_size);
  return t;
}

// Serializes writers: two threads writing one path would share a temporary
// file name (PATH.tmp.<pid>).
ABSL_CONST_INIT absl::Mutex write_mu(absl::kConstInit);

absl::Status WriteLocked(const directory::Directory& dir,
                         const SnapshotMetadata& meta,
                         const std::string& path) {
  uint64_t file_size = 0;
  RG_ASSIGN_OR_RETURN(std::string head,
                      EncodeHead(path, dir, meta, &file_size));
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  UniqueFd fd(::open(tmp.c_str(), flags, 0644));
  if (fd.get() < 0 && errno == EEXIST) {
    // Left by a crashed process with our pid (containers reuse pids); no
    // live writer can own it: this process's writers hold write_mu.
    ::unlink(tmp.c_str());
    fd.Reset(::open(tmp.c_str(), flags, 0644));
  }
  if (fd.get() < 0) {
    return ErrnoError(errno, path, absl::StrCat("cannot create ", tmp));
  }
  // Any failure from here on removes the temporary file; `path` itself is
  // only ever touched by the rename.
  auto fail = [&](int err, std::string_view what) {
    fd.Close();
    ::unlink(tmp.c_str());
    return ErrnoError(err, path, absl::StrCat(ToAbsl(what), " ", tmp));
  };
  // The umask must not narrow the mode: every server reads the file.
  if (::fchmod(fd.get(), 0644) != 0) return fail(errno, "cannot chmod");

  Checksum sum;
  sum.Update(head);
  if (int err = WriteAll(fd.get(), head.data(), head.size())) {
    return fail(err, "cannot write");
  }
  const absl::Span<const uint64_t> slots = dir.fingerprints().all_slots();
  const char* bytes = reinterpret_cast<const char*>(slots.data());
  const size_t slot_bytes = slots.size() * sizeof(uint64_t);
  for (size_t at = 0; at < slot_bytes; at += kIoBlockBytes) {
    const size_t n = std::min(kIoBlockBytes, slot_bytes - at);
    sum.Update(bytes + at, n);
    if (int err = WriteAll(fd.get(), bytes + at, n)) {
      return fail(err, "cannot write");
    }
  }
  std::string trailer = TrailerStart(file_size);
  sum.Update(trailer);
  PutU64(trailer, sum.Digest());
  if (int err = WriteAll(fd.get(), trailer.data(), trailer.size())) {
    return fail(err, "cannot write");
  }
  if (::fsync(fd.get()) != 0) return fail(errno, "cannot fsync");
  if (int err = fd.Close()) return fail(err, "cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(errno, "cannot rename");
  }
  // The rename is durable only once the folder is.
  std::string parent = std::filesystem::path(path).parent_path().string();
  if (parent.empty()) parent = ".";
  UniqueFd dir_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) {
    return ErrnoError(
        errno, path, absl::StrCat("written, but cannot fsync folder ", parent));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// XXH64 (xxHash specification, "XXH64 algorithm description").

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

inline uint64_t Round(uint64_t acc, uint64_t input) {
  acc += input * kPrime2;
  acc = std::rotl(acc, 31);
  return acc * kPrime1;
}
inline uint64_t MergeRound(uint64_t acc, uint64_t val) {
  acc ^= Round(0, val);
  return acc * kPrime1 + kPrime4;
}

// Consumes whole 32-byte stripes of [p, p + n); returns the bytes used.
inline size_t Stripes(uint64_t lanes[4], const unsigned char* p, size_t n) {
  uint64_t v0 = lanes[0], v1 = lanes[1], v2 = lanes[2], v3 = lanes[3];
  const size_t whole = n / 32 * 32;
  for (size_t i = 0; i < whole; i += 32) {
    v0 = Round(v0, LoadU64(reinterpret_cast<const char*>(p + i)));
    v1 = Round(v1, LoadU64(reinterpret_cast<const char*>(p + i + 8)));
    v2 = Round(v2, LoadU64(reinterpret_cast<const char*>(p + i + 16)));
    v3 = Round(v3, LoadU64(reinterpret_cast<const char*>(p + i + 24)));
  }
  lanes[0] = v0, lanes[1] = v1, lanes[2] = v2, lanes[3] = v3;
  return whole;
}

}  // namespace

Checksum::Checksum()
    : lanes_{kPrime1 + kPrime2, kPrime2, 0, 0 - kPrime1}, buffer_{} {}

void Checksum::Update(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  total_ += size;
  if (buffered_ > 0) {
    const size_t take = std::min(size, sizeof(buffer_) - buffered_);
    std::memcpy(buffer_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    size -= take;
    if (buffered_ < sizeof(buffer_)) return;
    Stripes(lanes_, buffer_, sizeof(buffer_));
    buffered_ = 0;
  }
  const size_t used = Stripes(lanes_, p, size);
  std::memcpy(buffer_, p + used, size - used);
  buffered_ = size - used;
}

uint64_t Checksum::Digest() const {
  uint64_t h;
  if (total_ >= 32) {
    h = std::rotl(lanes_[0], 1) + std::rotl(lanes_[1], 7) +
        std::rotl(lanes_[2], 12) + std::rotl(lanes_[3], 18);
    for (uint64_t lane : lanes_) h = MergeRound(h, lane);
  } else {
    h = kPrime5;  // seed 0
  }
  h += total_;
  const unsigned char* p = buffer_;
  size_t n = buffered_;
  for (; n >= 8; p += 8, n -= 8) {
    h ^= Round(0, LoadU64(reinterpret_cast<const char*>(p)));
    h = std::rotl(h, 27) * kPrime1 + kPrime4;
  }
  if (n >= 4) {
    h ^= uint64_t{LoadU32(reinterpret_cast<const char*>(p))} * kPrime1;
    h = std::rotl(h, 23) * kPrime2 + kPrime3;
    p += 4;
    n -= 4;
  }
  for (; n > 0; ++p, --n) {
    h ^= uint64_t{*p} * kPrime5;
    h = std::rotl(h, 11) * kPrime1;
  }
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

uint64_t ChecksumOf(std::string_view bytes) {
  Checksum sum;
  sum.Update(bytes);
  return sum.Digest();
}

const SnapshotDomain* SnapshotInfo::FindDomain(std::string_view name) const {
  for (const SnapshotDomain& d : domains) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

absl::Status WriteSnapshot(const directory::Directory& dir,
                           const SnapshotMetadata& meta,
                           const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("snapshot: empty output path");
  }
  absl::MutexLock lock(&write_mu);
  return WriteLocked(dir, meta, path);
}

absl::StatusOr<std::string> EncodeSnapshot(const directory::Directory& dir,
                                           const SnapshotMetadata& meta) {
  uint64_t file_size = 0;
  RG_ASSIGN_OR_RETURN(std::string out,
                      EncodeHead("(buffer)", dir, meta, &file_size));
  const absl::Span<const uint64_t> slots = dir.fingerprints().all_slots();
  out.reserve(file_size);
  out.append(reinterpret_cast<const char*>(slots.data()),
             slots.size() * sizeof(uint64_t));
  out += TrailerStart(file_size);
  PutU64(out, ChecksumOf(out));
  return out;
}

absl::StatusOr<LoadedSnapshot> ReadSnapshot(
    const std::string& path, const directory::SipKey& key,
    std::vector<directory::DomainPolicy> served_domains,
    const ReadOptions& options) {
  RG_ASSIGN_OR_RETURN(DirectoryBuilder builder,
                      CreateBuilder(path, key, std::move(served_domains)));
  RG_ASSIGN_OR_RETURN(Image image, LoadImage(path, options.slot_storage));
  RG_ASSIGN_OR_RETURN(Parsed parsed,
                      ParseImage(path, image.bytes, image.checksum));
  RG_RETURN_IF_ERROR(CheckKey(path, parsed.info, key));
  RG_ASSIGN_OR_RETURN(FingerprintSet set, MakeSet(path, image.bytes, parsed,
                                                  std::move(image.keep_alive)));
  if (options.slot_storage == SlotStorage::kMappedFile) {
    // Verified and populated; lookups from here on are random accesses.
    ::madvise(const_cast<char*>(image.bytes.data()), image.bytes.size(),
              MADV_RANDOM);
  }
  return Assemble(path, std::move(parsed), std::move(set), std::move(builder),
                  options.loaded_at);
}

absl::StatusOr<SnapshotInfo> InspectSnapshot(const std::string& path) {
  RG_ASSIGN_OR_RETURN(Image image, LoadImage(path, SlotStorage::kMappedFile));
  RG_ASSIGN_OR_RETURN(Parsed parsed,
                      ParseImage(path, image.bytes, image.checksum));
  return std::move(parsed.info);
}

absl::Status VerifySnapshot(const std::string& path,
                            const std::optional<directory::SipKey>& key) {
  RG_ASSIGN_OR_RETURN(Image image, LoadImage(path, SlotStorage::kMappedFile));
  RG_ASSIGN_OR_RETURN(Parsed parsed,
                      ParseImage(path, image.bytes, image.checksum));
  if (key.has_value()) RG_RETURN_IF_ERROR(CheckKey(path, parsed.info, *key));
  return MakeSet(path, image.bytes, parsed, std::move(image.keep_alive))
      .status();
}

absl::StatusOr<LoadedSnapshot> ReadSnapshotFromBuffer(
    std::string_view name, std::shared_ptr<const std::string> bytes,
    const directory::SipKey& key,
    std::vector<directory::DomainPolicy> served_domains, absl::Time loaded_at) {
  if (bytes == nullptr) {
    return absl::InvalidArgumentError(Msg(name, "no buffer"));
  }
  RG_ASSIGN_OR_RETURN(DirectoryBuilder builder,
                      CreateBuilder(name, key, std::move(served_domains)));
  const std::string_view image(*bytes);
  RG_ASSIGN_OR_RETURN(uint64_t checksum, CheckBuffer(name, image));
  RG_ASSIGN_OR_RETURN(Parsed parsed, ParseImage(name, image, checksum));
  RG_RETURN_IF_ERROR(CheckKey(name, parsed.info, key));
  RG_ASSIGN_OR_RETURN(FingerprintSet set,
                      MakeSet(name, image, parsed, std::move(bytes)));
  return Assemble(name, std::move(parsed), std::move(set), std::move(builder),
                  loaded_at);
}

absl::StatusOr<SnapshotInfo> InspectSnapshotBuffer(std::string_view name,
                                                   std::string_view bytes) {
  RG_ASSIGN_OR_RETURN(uint64_t checksum, CheckBuffer(name, bytes));
  RG_ASSIGN_OR_RETURN(Parsed parsed, ParseImage(name, bytes, checksum));
  return std::move(parsed.info);
}

}  // namespace rcptguard::snapshot
