// `rcptguard snapshot build`: reads LDIF files or a live LDAP export into a
// directory and writes it as a snapshot, atomically and only when complete
// (snapshot_command.h has the contract).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cli/snapshot_command.h"
#include "clients/cli/snapshot_flags.h"
#include "clients/cli/snapshot_util.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "rcptguard/v1/config.pb.h"
#include "server/config/config.h"
#include "server/directory/directory.h"
#include "server/directory/siphash.h"
#include "server/directory_config/directory_config.h"
#include "server/ldap/ldap_export.h"
#include "server/ldif/ldif.h"
#include "server/ldif/mapping.h"
#include "server/snapshot/snapshot_file.h"

namespace rcptguard::cli::internal {
namespace {

// The signals that end a build run from a terminal or a service manager.
constexpr int kInterruptSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

// Set while a snapshot is being written: holds back the interrupt signals so
// that a Ctrl-C cannot stop WriteSnapshot between creating its temporary
// file and renaming or removing it. A signal that arrives meanwhile is
// delivered (and acted on) when the guard goes.
class InterruptsHeld {
 public:
  InterruptsHeld() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : kInterruptSignals) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~InterruptsHeld() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  InterruptsHeld(const InterruptsHeld&) = delete;
  InterruptsHeld& operator=(const InterruptsHeld&) = delete;

 private:
  sigset_t previous_;
};

// Everything a build needs, resolved from flags and the optional config.
struct BuildPlan {
  std::vector<std::string> ldif_files;
  bool from_ldap = false;
  ldap::LdapExportOptions ldap;
  ldif::AttributeMapping mapping;
  std::vector<directory::DomainPolicy> domains;
  std::string key_file;
  std::string out;
  std::string version;  // empty: made from the time and content
  std::string source;
};

using service::FirstErrorCollector;

using directory_config::MappingFromProto;

absl::StatusOr<ldif::AttributeMapping> ReadMappingFile(
    const std::string& path) {
  // "mapping file PATH: cannot open: No such file or directory", "...: is a
  // FIFO, not a regular file": never blocks, never reads without bound.
  RG_ASSIGN_OR_RETURN(
      const std::string text,
      ReadRegularFile("mapping file", path, kMaxConfigFileBytes));
  v1::AttributeMapping proto;
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors(path);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &proto)) {
    return absl::InvalidArgumentError(errors.error().empty()
                                          ? absl::StrCat(path, ": parse error")
                                          : errors.error());
  }
  return MappingFromProto(proto);
}

std::vector<directory::DomainPolicy> PoliciesFromNames(
    const std::vector<std::string>& names) {
  std::vector<directory::DomainPolicy> out;
  for (const std::string& name : names) {
    if (name.empty()) continue;
    directory::DomainPolicy p;
    p.name = name;
    out.push_back(std::move(p));
  }
  return out;
}

std::string DefaultSource(const BuildPlan& plan) {
  std::string source;
  if (plan.from_ldap) {
    source = absl::StrCat(plan.ldap.uri,
                          " base=", absl::StrJoin(plan.ldap.base_dns, ";"));
  } else {
    source = absl::StrCat("ldif:", absl::StrJoin(plan.ldif_files, ","));
  }
  if (source.size() > snapshot::kMaxSourceBytes) {
    source.resize(snapshot::kMaxSourceBytes - 3);
    source += "...";
  }
  return source;
}

// Checks the flags that do not need any file; kExitOk or the usage error
// already printed.
int CheckBuildUsage(const std::vector<char*>& args) {
  constexpr std::string_view kCmd = "build";
  if (!Operands(args).empty()) {
    return Usage(kCmd, absl::StrCat("unexpected operand \"", args[3],
                                    "\" (inputs are given with --from_ldif "
                                    "or --from_ldap)"));
  }
  const bool ldif = !absl::GetFlag(FLAGS_from_ldif).values.empty();
  const bool ldap = !absl::GetFlag(FLAGS_from_ldap).empty();
  if (ldif == ldap) {
    return Usage(kCmd, "give exactly one of --from_ldif and --from_ldap");
  }
  if (!absl::GetFlag(FLAGS_preset).empty() &&
      !absl::GetFlag(FLAGS_mapping).empty()) {
    return Usage(kCmd, "give --preset or --mapping, not both");
  }
  const bool has_config = !absl::GetFlag(FLAGS_config).empty();
  if (!has_config) {
    if (absl::GetFlag(FLAGS_preset).empty() &&
        absl::GetFlag(FLAGS_mapping).empty()) {
      return Usage(kCmd, "give --preset or --mapping (or --config)");
    }
    if (absl::GetFlag(FLAGS_domains).empty()) {
      return Usage(kCmd, "give --domains (or --config)");
    }
    if (absl::GetFlag(FLAGS_key).empty()) {
      return Usage(kCmd, "give --key (or --config with fingerprint_key_file)");
    }
    if (absl::GetFlag(FLAGS_out).empty()) {
      return Usage(kCmd,
                   "give --out (or --config with directory.snapshot_file)");
    }
  }
  if (ldap) {
    if (absl::GetFlag(FLAGS_base_dn).values.empty()) {
      return Usage(kCmd, "--from_ldap needs --base_dn");
    }
  } else {
    std::vector<std::string> ldap_only;
    if (!absl::GetFlag(FLAGS_base_dn).values.empty())
      ldap_only.push_back("--base_dn");
    if (!absl::GetFlag(FLAGS_filter).empty()) ldap_only.push_back("--filter");
    if (!absl::GetFlag(FLAGS_bind_dn).empty()) ldap_only.push_back("--bind_dn");
    if (!absl::GetFlag(FLAGS_password_file).empty()) {
      ldap_only.push_back("--password_file");
    }
    if (absl::GetFlag(FLAGS_start_tls)) ldap_only.push_back("--start_tls");
    if (!absl::GetFlag(FLAGS_ca_file).empty()) ldap_only.push_back("--ca_file");
    if (absl::GetFlag(FLAGS_page_size) != 500)
      ldap_only.push_back("--page_size");
    if (absl::GetFlag(FLAGS_timeout) != absl::Seconds(30)) {
      ldap_only.push_back("--timeout");
    }
    if (!ldap_only.empty()) {
      return Usage(kCmd, absl::StrCat(absl::StrJoin(ldap_only, ", "),
                                      " only apply to --from_ldap"));
    }
  }
  if (absl::GetFlag(FLAGS_snapshot_version).size() >
      snapshot::kMaxVersionBytes) {
    return Usage(kCmd, absl::StrCat("--snapshot_version is longer than ",
                                    snapshot::kMaxVersionBytes, " bytes"));
  }
  if (absl::GetFlag(FLAGS_source).size() > snapshot::kMaxSourceBytes) {
    return Usage(kCmd, absl::StrCat("--source is longer than ",
                                    snapshot::kMaxSourceBytes, " bytes"));
  }
  return kExitOk;
}

// Resolves flags and config into a plan. Errors here are about files
// (unreadable config or mapping) or what the config lacks.
absl::StatusOr<BuildPlan> MakeBuildPlan() {
  BuildPlan plan;
  std::optional<v1::ServerConfig> config;
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    RG_ASSIGN_OR_RETURN(config, service::LoadConfig(path));
  }

  // Mapping: flags, else the config's.
  const bool include_disabled =
      absl::GetFlag(FLAGS_include_disabled_accounts) ||
      (config.has_value() && config->directory().include_disabled_accounts());
  if (const std::string preset = absl::GetFlag(FLAGS_preset); !preset.empty()) {
    RG_ASSIGN_OR_RETURN(ldif::Preset p, ldif::ParsePreset(preset));
    plan.mapping = ldif::AttributeMapping::ForPreset(p);
  } else if (const std::string file = absl::GetFlag(FLAGS_mapping);
             !file.empty()) {
    RG_ASSIGN_OR_RETURN(plan.mapping, ReadMappingFile(file));
  } else if (config.has_value() && config->directory().has_mapping()) {
    plan.mapping = MappingFromProto(config->directory().mapping());
  } else if (config.has_value() && !config->directory().preset().empty()) {
    RG_ASSIGN_OR_RETURN(ldif::Preset p,
                        ldif::ParsePreset(config->directory().preset()));
    plan.mapping = ldif::AttributeMapping::ForPreset(p);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "the config ", absl::GetFlag(FLAGS_config),
        " names no directory.preset or directory.mapping: give --preset or "
        "--mapping"));
  }
  plan.mapping.include_disabled_accounts = include_disabled;
  if (absl::Status s = plan.mapping.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("attribute mapping: ", s.message()));
  }

  // Domains, key, output: flags, else the config's.
  if (!absl::GetFlag(FLAGS_domains).empty()) {
    plan.domains = PoliciesFromNames(absl::GetFlag(FLAGS_domains));
  } else if (config.has_value()) {
    plan.domains = directory_config::DomainPolicies(*config);
  }
  plan.key_file = absl::GetFlag(FLAGS_key);
  if (plan.key_file.empty() && config.has_value()) {
    plan.key_file = config->fingerprint_key_file();
  }
  if (plan.key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the config ", absl::GetFlag(FLAGS_config),
                     " has no fingerprint_key_file: give --key"));
  }
  plan.out = absl::GetFlag(FLAGS_out);
  if (plan.out.empty() && config.has_value()) {
    plan.out = config->directory().snapshot_file();
  }
  if (plan.out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the config ", absl::GetFlag(FLAGS_config),
                     " has no directory.snapshot_file: give --out"));
  }

  // Source.
  plan.ldif_files = absl::GetFlag(FLAGS_from_ldif).values;
  plan.from_ldap = !absl::GetFlag(FLAGS_from_ldap).empty();
  if (plan.from_ldap) {
    ldap::LdapExportOptions& o = plan.ldap;
    o.uri = absl::GetFlag(FLAGS_from_ldap);
    o.start_tls = absl::GetFlag(FLAGS_start_tls);
    o.ca_file = absl::GetFlag(FLAGS_ca_file);
    o.bind_dn = absl::GetFlag(FLAGS_bind_dn);
    o.password_file = absl::GetFlag(FLAGS_password_file);
    o.base_dns = absl::GetFlag(FLAGS_base_dn).values;
    o.filter = absl::GetFlag(FLAGS_filter);
    if (o.filter.empty()) o.filter = ldap::DefaultFilter(plan.mapping);
    o.attributes = ldap::RequestedAttributes(plan.mapping);
    o.page_size = absl::GetFlag(FLAGS_page_size);
    o.timeout = absl::GetFlag(FLAGS_timeout);
  }
  plan.version = absl::GetFlag(FLAGS_snapshot_version);
  plan.source = absl::GetFlag(FLAGS_source);
  if (plan.source.empty()) plan.source = DefaultSource(plan);
  return plan;
}

// Fails early (before a long export) when the output cannot be written.
absl::Status CheckOutputWritable(const std::string& out) {
  const std::string dir = DirName(out);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("output folder ", dir, ": ", ErrnoText(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("output folder ", dir, " is not a folder"));
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot write into output folder ", dir, ": ", ErrnoText(errno)));
  }
  if (::stat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--out ", out, " is a folder"));
  }
  return absl::OkStatus();
}

struct BuildCounts {
  ldif::LdifLoadStats entries;  // records, included, disabled, ...
  uint64_t added = 0, duplicate = 0, not_served = 0, malformed = 0;
};

// A hash of what the snapshot holds: the fingerprint slots (laid out
// deterministically from the set) and the domain names. Equal content under
// the same key gives the same hash whatever order the source had.
uint32_t ContentHash(const directory::Directory& dir) {
  snapshot::Checksum sum;
  const absl::Span<const uint64_t> slots = dir.fingerprints().all_slots();
  sum.Update(slots.data(), slots.size() * sizeof(uint64_t));
  for (const directory::DomainPolicy& d : dir.domains()) {
    sum.Update(d.name);
    sum.Update("\n", 1);
  }
  const uint64_t digest = sum.Digest();
  return static_cast<uint32_t>(digest ^ (digest >> 32));
}

}  // namespace

int RunBuild(const std::vector<char*>& args) {
  constexpr std::string_view kCmd = "build";
  if (int rc = CheckBuildUsage(args); rc != kExitOk) return rc;
  absl::StatusOr<BuildPlan> plan_or = MakeBuildPlan();
  if (!plan_or.ok()) return Fail(kCmd, plan_or.status());
  BuildPlan& plan = *plan_or;

  absl::StatusOr<directory::SipKey> key = ReadKeyFile(plan.key_file);
  if (!key.ok()) return Fail(kCmd, key.status());
  if (absl::Status s = CheckOutputWritable(plan.out); !s.ok()) {
    return Fail(kCmd, s);
  }
  absl::StatusOr<directory::DirectoryBuilder> builder =
      directory::DirectoryBuilder::Create(*key, plan.domains);
  if (!builder.ok()) return Fail(kCmd, builder.status());

  const absl::Time start = absl::Now();
  BuildCounts counts;
  auto add = [&](std::string_view address) {
    switch (builder->AddAddress(address)) {
      case directory::DirectoryBuilder::AddOutcome::kAdded:
        ++counts.added;
        break;
      case directory::DirectoryBuilder::AddOutcome::kDuplicate:
        ++counts.duplicate;
        break;
      case directory::DirectoryBuilder::AddOutcome::kNotServed:
        ++counts.not_served;
        break;
      case directory::DirectoryBuilder::AddOutcome::kMalformed:
        // The parser's message would show the address: count only.
        ++counts.malformed;
        break;
    }
  };

  if (plan.from_ldap) {
    ldif::LdifLoadStats& e = counts.entries;
    absl::StatusOr<ldap::LdapExportStats> exported =
        ldap::ExportLdap(plan.ldap, [&](const ldif::LdifRecord& record) {
          ++e.records;
          ldif::MappedEntry mapped = ldif::MapEntry(record, plan.mapping);
          switch (mapped.outcome) {
            case ldif::EntryOutcome::kIncluded:
              ++e.included;
              for (const std::string& a : mapped.addresses) {
                ++e.addresses;
                add(a);
              }
              break;
            case ldif::EntryOutcome::kNoAddresses:
              ++e.no_addresses;
              break;
            case ldif::EntryOutcome::kWrongObjectClass:
              ++e.wrong_object_class;
              break;
            case ldif::EntryOutcome::kDisabledAccount:
              ++e.disabled;
              break;
          }
        });
    if (!exported.ok()) {
      return Fail(
          kCmd, absl::StrCat(exported.status().message(), "; nothing written"));
    }
    if (exported->entries == 0) {
      return Fail(kCmd,
                  absl::StrCat(ldap::NoEntriesHint(plan.ldap, plan.mapping),
                               "; nothing written"));
    }
  } else {
    uint64_t total_bytes = 0;
    for (const std::string& file : plan.ldif_files) {
      struct stat st;
      if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        total_bytes += static_cast<uint64_t>(st.st_size);
      }
    }
    // Generated and real AD exports run at roughly 400-600 bytes of LDIF per
    // address; reserving for a bit more avoids rehashing while adding.
    builder->Reserve(static_cast<size_t>(total_bytes / 384));
    for (const std::string& file : plan.ldif_files) {
      absl::StatusOr<ldif::LdifLoadStats> s =
          ldif::LoadLdifFile(file, plan.mapping, add);
      if (!s.ok()) {
        return Fail(kCmd,
                    absl::StrCat(s.status().message(), "; nothing written"));
      }
      counts.entries.records += s->records;
      counts.entries.included += s->included;
      counts.entries.no_addresses += s->no_addresses;
      counts.entries.wrong_object_class += s->wrong_object_class;
      counts.entries.disabled += s->disabled;
      counts.entries.addresses += s->addresses;
    }
  }

  if (builder->address_count() == 0) {
    return Fail(
        kCmd,
        absl::StrCat("no address in a served domain (", counts.entries.records,
                     " records read, ", counts.entries.addresses,
                     " addresses found, ", counts.not_served,
                     " of them in domains not served, ", counts.malformed,
                     " malformed); refusing to write an empty snapshot, "
                     "nothing written"));
  }

  directory::DirectoryInfo info;
  info.source = plan.source;
  info.built_at = start;
  info.loaded_at = start;
  absl::StatusOr<std::shared_ptr<const directory::Directory>> dir =
      std::move(*builder).Build(info);
  if (!dir.ok()) return Fail(kCmd, dir.status());

  snapshot::SnapshotMetadata meta;
  meta.source = plan.source;
  meta.created_at = start;
  meta.version = plan.version;
  if (meta.version.empty()) {
    meta.version = absl::StrFormat(
        "snap-%s-%08x",
        absl::FormatTime("%Y%m%dT%H%M%SZ", start, absl::UTCTimeZone()),
        ContentHash(**dir));
  }
  {
    InterruptsHeld held;
    // Over a file size limit (ulimit -f, RLIMIT_FSIZE) write() must fail
    // with EFBIG, which WriteSnapshot answers by removing its temporary
    // file; SIGXFSZ's default action would kill the process and leave it.
    ::signal(SIGXFSZ, SIG_IGN);
    if (absl::Status s = snapshot::WriteSnapshot(**dir, meta, plan.out);
        !s.ok()) {
      return Fail(kCmd, absl::StrCat(s.message(), "; nothing written"));
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);

  const directory::Directory& built = **dir;
  for (const directory::AliasDomainAddresses& alias :
       built.info().alias_domain_addresses) {
    std::fprintf(stderr,
                 "rcptguard snapshot build: warning: %llu addresses are "
                 "written with alias domain %s and were folded into %s; if "
                 "%s is an Exchange accepted domain, serve it as a domain of "
                 "its own (docs/ldap-mapping.md)\n",
                 static_cast<unsigned long long>(alias.addresses),
                 alias.alias.c_str(), alias.target.c_str(),
                 alias.alias.c_str());
  }
  std::vector<std::string> per_domain;
  for (size_t i = 0; i < built.domains().size(); ++i) {
    per_domain.push_back(absl::StrCat(built.domains()[i].name, " ",
                                      built.domain_address_count(i)));
    if (built.domain_address_count(i) == 0) {
      std::fprintf(stderr,
                   "rcptguard snapshot build: warning: served domain %s has "
                   "no address in this snapshot\n",
                   built.domains()[i].name.c_str());
    }
  }
  const ldif::LdifLoadStats& e = counts.entries;
  const uint64_t rate =
      seconds > 0
          ? static_cast<uint64_t>(static_cast<double>(e.records) / seconds)
          : 0;
  const std::string summary = absl::StrCat(
      "wrote ", plan.out, ": version ", meta.version, ", key id ",
      HexId(built.key_id()), ", ", built.address_count(), " addresses (",
      absl::StrJoin(per_domain, ", "), "). Read ", e.records, " records from ",
      plan.source, ": ", e.included, " included, ", e.disabled,
      " excluded as disabled accounts, ", e.no_addresses,
      " without addresses, ", e.wrong_object_class,
      " of other object classes. Of ", e.addresses,
      " addresses found, skipped ", counts.not_served,
      " in domains not served, ", counts.malformed, " malformed, ",
      counts.duplicate, " duplicates. ", absl::StrFormat("%.2f", seconds),
      " s, ", rate, " entries/s.\n");
  std::fputs(summary.c_str(), stdout);
  return kExitOk;
}

}  // namespace rcptguard::cli::internal
