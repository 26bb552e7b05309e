#include "server/snapshot/snapshot_format.h"

#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace rcptguard::snapshot {
namespace {

using directory::DomainMode;
using directory::FingerprintSet;

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

}  // namespace

std::string Hex(uint64_t v) { return absl::StrFormat("0x%016x", v); }

absl::Status DamagedError(std::string_view damage, std::string message) {
  absl::Status status = absl::DataLossError(message);
  status.SetPayload(ToAbsl(kSnapshotDamagePayload), absl::Cord(ToAbsl(damage)));
  return status;
}

std::string_view SnapshotDamage(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kDataLoss) return "";
  const absl::optional<absl::Cord> damage =
      status.GetPayload(ToAbsl(kSnapshotDamagePayload));
  if (!damage.has_value()) return kDamageCorrupt;
  if (*damage == ToAbsl(kDamageEmpty)) return kDamageEmpty;
  if (*damage == ToAbsl(kDamageTruncated)) return kDamageTruncated;
  return kDamageCorrupt;
}

absl::Status ErrnoError(int err, std::string_view name, std::string_view what) {
  return absl::ErrnoToStatus(err, Msg(name, ToAbsl(what)));
}

// `head` holds the first min(file size, kHeaderBytes) bytes.
absl::Status CheckPreamble(std::string_view name, std::string_view head,
                           uint64_t file_bytes) {
  if (file_bytes == 0) {
    return DamagedError(kDamageEmpty, Msg(name, "file is empty"));
  }
  const size_t magic_bytes = std::min(head.size(), sizeof(kSnapshotMagic));
  if (std::memcmp(head.data() + kOffMagic, kSnapshotMagic, magic_bytes) != 0) {
    return absl::InvalidArgumentError(
        Msg(name, "not an rcptguard snapshot (bad magic)"));
  }
  if (file_bytes < kPreambleBytes) {
    return DamagedError(
        kDamageTruncated,
        Msg(name, "truncated: file has ", file_bytes,
            " bytes, less than a snapshot header (", kHeaderBytes, ")"));
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
    return DamagedError(kDamageTruncated,
                        Msg(name, "truncated: file has ", file_bytes,
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

}  // namespace rcptguard::snapshot
