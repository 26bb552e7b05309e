// Writing snapshots: WriteSnapshot and EncodeSnapshot (snapshot_file.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "server/snapshot/snapshot_file.h"
#include "server/snapshot/snapshot_format.h"

namespace rcptguard::snapshot {
namespace {

using directory::Directory;
using directory::DomainMode;
using directory::DomainPolicy;
using directory::FingerprintSet;

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
  // Not `parent = "."`: g++ 12 inlines that into a false -Wrestrict
  // warning here (GCC bug 105329).
  if (parent.empty()) parent.assign(1, '.');
  UniqueFd dir_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) {
    return ErrnoError(
        errno, path, absl::StrCat("written, but cannot fsync folder ", parent));
  }
  return absl::OkStatus();
}

}  // namespace

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

}  // namespace rcptguard::snapshot
