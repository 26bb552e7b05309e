// Reading snapshots: ReadSnapshot, InspectSnapshot, VerifySnapshot and their
// buffer forms (snapshot_file.h).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/bytes.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "server/snapshot/snapshot_file.h"
#include "server/snapshot/snapshot_format.h"

namespace rcptguard::snapshot {
namespace {

using directory::Directory;
using directory::DirectoryBuilder;
using directory::DirectoryInfo;
using directory::DomainPolicy;
using directory::FingerprintSet;
using directory::SipKey;

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
      return DamagedError(kDamageTruncated,
                          Msg(name, "file shrank while being read"));
    }
    out += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
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

}  // namespace

const SnapshotDomain* SnapshotInfo::FindDomain(std::string_view name) const {
  for (const SnapshotDomain& d : domains) {
    if (d.name == name) return &d;
  }
  return nullptr;
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
