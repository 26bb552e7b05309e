// `rcptguard snapshot inspect FILE [--json]`: what a snapshot holds
// (counts, domains, source, key id), never an address or the key.
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cli/snapshot_command.h"
#include "clients/cli/snapshot_flags.h"
#include "clients/cli/snapshot_util.h"
#include "common/text.h"
#include "server/directory/directory.h"
#include "server/snapshot/snapshot_file.h"

namespace rcptguard::cli::internal {
namespace {

std::string JsonString(std::string_view s) { return JsonQuote(s); }

const char* ModeName(directory::DomainMode mode) {
  return mode == directory::DomainMode::kMonitor ? "monitor" : "enforce";
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

int RunInspect(const std::vector<char*>& args) {
  constexpr std::string_view kCmd = "inspect";
  const std::vector<std::string> operands = Operands(args);
  if (operands.size() != 1)
    return Usage(kCmd, "give exactly one snapshot FILE");
  absl::StatusOr<snapshot::SnapshotInfo> info =
      snapshot::InspectSnapshot(operands[0]);
  if (!info.ok()) return Fail(kCmd, info.status());

  if (absl::GetFlag(FLAGS_json)) {
    std::vector<std::string> domains;
    for (const snapshot::SnapshotDomain& d : info->domains) {
      std::vector<std::string> aliases;
      for (const std::string& a : d.aliases) aliases.push_back(JsonString(a));
      domains.push_back(
          absl::StrCat("    {\"name\": ", JsonString(d.name), ", \"mode\": \"",
                       ModeName(d.mode), "\", \"subaddress_delimiters\": ",
                       JsonString(d.subaddress_delimiters), ", \"aliases\": [",
                       absl::StrJoin(aliases, ", "),
                       "], \"address_count\": ", d.address_count, "}"));
    }
    std::printf(
        "{\n"
        "  \"path\": %s,\n"
        "  \"file_size\": %llu,\n"
        "  \"format_version\": %u,\n"
        "  \"minor_version\": %u,\n"
        "  \"version\": %s,\n"
        "  \"created_at\": \"%s\",\n"
        "  \"source\": %s,\n"
        "  \"key_id\": \"%s\",\n"
        "  \"checksum\": \"%s\",\n"
        "  \"address_count\": %llu,\n"
        "  \"shard_bits\": %d,\n"
        "  \"domains\": [\n%s\n  ]\n"
        "}\n",
        JsonString(info->path).c_str(),
        static_cast<unsigned long long>(info->file_size), info->format_version,
        info->minor_version, JsonString(info->version).c_str(),
        Rfc3339(info->created_at).c_str(), JsonString(info->source).c_str(),
        HexId(info->key_id).c_str(), HexId(info->checksum).c_str(),
        static_cast<unsigned long long>(info->address_count), info->shard_bits,
        absl::StrJoin(domains, ",\n").c_str());
    return kExitOk;
  }

  const absl::Duration age =
      absl::Trunc(absl::Now() - info->created_at, absl::Seconds(1));
  const std::string age_text =
      age < absl::ZeroDuration()
          ? "in the future: check the clocks"
          : absl::StrCat(
                age == absl::ZeroDuration() ? "0s" : absl::FormatDuration(age),
                " ago");
  std::printf("file        %s (%s bytes, format %u.%u, checksum %s verified)\n",
              info->path.c_str(), std::to_string(info->file_size).c_str(),
              info->format_version, info->minor_version,
              HexId(info->checksum).c_str());
  std::printf("version     %s\n", info->version.c_str());
  std::printf("created at  %s (%s)\n", Rfc3339(info->created_at).c_str(),
              age_text.c_str());
  std::printf("source      %s\n", info->source.c_str());
  std::printf("key id      %s\n", HexId(info->key_id).c_str());
  std::printf("addresses   %s in %zu domains\n",
              std::to_string(info->address_count).c_str(),
              info->domains.size());
  size_t width = 6;
  for (const snapshot::SnapshotDomain& d : info->domains) {
    width = std::max(width, d.name.size());
  }
  std::printf("%-*s  %12s  %-7s  %-10s  %s\n", static_cast<int>(width),
              "domain", "addresses", "mode", "delimiters", "aliases");
  for (const snapshot::SnapshotDomain& d : info->domains) {
    std::printf(
        "%-*s  %12s  %-7s  %-10s  %s\n", static_cast<int>(width),
        d.name.c_str(), std::to_string(d.address_count).c_str(),
        ModeName(d.mode),
        d.subaddress_delimiters.empty() ? "-" : d.subaddress_delimiters.c_str(),
        d.aliases.empty() ? "-" : absl::StrJoin(d.aliases, ",").c_str());
  }
  return kExitOk;
}

}  // namespace rcptguard::cli::internal
