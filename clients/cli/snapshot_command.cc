#include "clients/cli/snapshot_command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "rcptguard/v1/config.pb.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "server/directory/directory.h"
#include "server/directory/siphash.h"
#include "server/directory_config/directory_config.h"
#include "server/ldap/ldap_export.h"
#include "server/service/config.h"
#include "server/snapshot/ldif.h"
#include "server/snapshot/mapping.h"
#include "server/snapshot/snapshot_file.h"

// --- list flags that keep every occurrence ---------------------------------
//
// Abseil keeps only the last occurrence of a flag. For --base_dn and
// --from_ldif that would silently drop a base or a file given first, and a
// snapshot missing part of the directory: so these two types collect every
// occurrence. Abseil parses each occurrence into a fresh value, hence the
// per-flag accumulator. Parsing happens once, in absl::ParseCommandLine.
namespace rcptguard::cli::internal {

// --from_ldif: files, comma-separated and/or repeated.
struct LdifFileList {
  std::vector<std::string> values;
};
// --base_dn: DNs, ';'-separated and/or repeated (a DN holds commas).
struct BaseDnList {
  std::vector<std::string> values;
};

inline std::vector<std::string> AccumulateList(std::vector<std::string>* seen,
                                               absl::string_view text,
                                               char separator) {
  for (absl::string_view piece :
       absl::StrSplit(text, separator, absl::SkipWhitespace())) {
    seen->emplace_back(absl::StripAsciiWhitespace(piece));
  }
  return *seen;
}

inline bool AbslParseFlag(absl::string_view text, LdifFileList* out,
                          std::string*) {
  static auto* const seen = new std::vector<std::string>();
  out->values = AccumulateList(seen, text, ',');
  return true;
}
inline std::string AbslUnparseFlag(const LdifFileList& list) {
  return absl::StrJoin(list.values, ",");
}
inline bool AbslParseFlag(absl::string_view text, BaseDnList* out,
                          std::string*) {
  static auto* const seen = new std::vector<std::string>();
  out->values = AccumulateList(seen, text, ';');
  return true;
}
inline std::string AbslUnparseFlag(const BaseDnList& list) {
  return absl::StrJoin(list.values, ";");
}

}  // namespace rcptguard::cli::internal

// Defined in clients/cli/main.cc, shared with the other commands.
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(bool, force);

ABSL_FLAG(std::string, out, "",
          "snapshot keygen / build: the file to write (build: default the "
          "config's directory.snapshot_file).");
ABSL_FLAG(rcptguard::cli::internal::LdifFileList, from_ldif, {},
          "snapshot build: LDIF export(s) to read; comma-separated, or give "
          "the flag several times.");
ABSL_FLAG(std::string, from_ldap, "",
          "snapshot build: export live from this LDAP server "
          "(ldap://host[:port] or ldaps://host[:port]).");
ABSL_FLAG(std::string, preset, "",
          "snapshot build: attribute mapping preset, ad or openldap.");
ABSL_FLAG(std::string, mapping, "",
          "snapshot build: a text-format rcptguard.v1.AttributeMapping file "
          "instead of a preset.");
ABSL_FLAG(bool, include_disabled_accounts, false,
          "snapshot build (AD): keep disabled accounts, as Exchange does.");
ABSL_FLAG(std::vector<std::string>, domains, {},
          "snapshot build: served domains, comma-separated (instead of the "
          "config's).");
ABSL_FLAG(std::string, config, "",
          "snapshot build / verify: rcptguardd's config; supplies the "
          "domains, the key file, the mapping and the output path unless "
          "flags say otherwise.");
ABSL_FLAG(std::string, key, "",
          "snapshot build / verify: the fingerprint key file (16 raw bytes or "
          "32 hex digits).");
ABSL_FLAG(std::string, snapshot_version, "",
          "snapshot build: version string to record (default "
          "snap-<UTC time>-<content hash>).");
ABSL_FLAG(std::string, source, "",
          "snapshot build: source description to record (default: the URI "
          "and base DNs, or the LDIF files).");
ABSL_FLAG(rcptguard::cli::internal::BaseDnList, base_dn, {},
          "snapshot build --from_ldap: subtree search base(s); ';'-separated, "
          "or give the flag several times.");
ABSL_FLAG(std::string, filter, "",
          "snapshot build --from_ldap: RFC 4515 filter (default: the "
          "mapping's).");
ABSL_FLAG(std::string, bind_dn, "",
          "snapshot build --from_ldap: simple bind DN (empty: anonymous).");
ABSL_FLAG(std::string, password_file, "",
          "snapshot build --from_ldap: file holding the bind password.");
ABSL_FLAG(bool, start_tls, false,
          "snapshot build --from_ldap: StartTLS on an ldap:// URI.");
ABSL_FLAG(std::string, ca_file, "",
          "snapshot build --from_ldap: PEM CA bundle for the server "
          "certificate.");
ABSL_FLAG(int, page_size, 500,
          "snapshot build --from_ldap: entries per page (AD serves at most "
          "1000).");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30),
          "snapshot build --from_ldap: limit per LDAP operation and per page.");

namespace rcptguard::cli {
namespace {

constexpr char kSnapshotUsage[] =
    "usage:\n"
    "  rcptguard snapshot keygen --out FILE [--force]\n"
    "  rcptguard snapshot build (--from_ldif FILE[,FILE...] | --from_ldap "
    "URI)\n"
    "      (--preset ad|openldap | --mapping FILE)\n"
    "      (--domains a.com,b.org | --config SERVER_CONFIG)\n"
    "      --key FILE --out FILE [--snapshot_version STR] [--source STR]\n"
    "      LDAP: --base_dn DN [--base_dn DN...] [--filter F] [--bind_dn DN\n"
    "            --password_file FILE] [--start_tls] [--ca_file FILE]\n"
    "            [--page_size N] [--timeout 30s]\n"
    "  rcptguard snapshot verify FILE [--key FILE | --config SERVER_CONFIG]\n"
    "  rcptguard snapshot inspect FILE [--json]\n"
    "see docs/snapshots.md\n";

// The signals that end a build run from a terminal or a service manager.
constexpr int kInterruptSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

int Fail(std::string_view command, std::string_view message) {
  std::fprintf(stderr, "rcptguard snapshot %.*s: %.*s\n",
               static_cast<int>(command.size()), command.data(),
               static_cast<int>(message.size()), message.data());
  return kExitFailure;
}
int Fail(std::string_view command, const absl::Status& status) {
  return Fail(command, ToStd(status.message()));
}
int Usage(std::string_view command, std::string_view message) {
  std::fprintf(stderr, "rcptguard snapshot %.*s: %.*s\n%s",
               static_cast<int>(command.size()), command.data(),
               static_cast<int>(message.size()), message.data(),
               kSnapshotUsage);
  return kExitUsage;
}

std::string HexId(uint64_t v) { return absl::StrFormat("0x%016x", v); }

std::string ErrnoText(int err) { return std::strerror(err); }

// Operands after "snapshot SUBCOMMAND".
std::vector<std::string> Operands(const std::vector<char*>& args) {
  std::vector<std::string> out;
  for (size_t i = 3; i < args.size(); ++i) out.emplace_back(args[i]);
  return out;
}

// The folder part of `path` ("." when it has none).
std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open folder ", dir, ": ", ErrnoText(errno)));
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot fsync folder ", dir, ": ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

// Reads a fingerprint key file the way rcptguardd does
// (directory_config::LoadFingerprintKey), and warns when others may read it.
absl::StatusOr<directory::SipKey> ReadKeyFile(const std::string& path) {
  RG_ASSIGN_OR_RETURN(
      directory::SipKey key,
      directory_config::ReadFingerprintKey(path, "fingerprint key file"));
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    std::fprintf(stderr,
                 "rcptguard snapshot: warning: key file %s is readable by "
                 "others (mode %04o); chmod 0600 it\n",
                 path.c_str(), static_cast<unsigned>(st.st_mode & 07777));
  }
  return key;
}

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

// --- keygen ---------------------------------------------------------------

absl::StatusOr<std::string> RandomKeyBytes() {
  std::string bytes(16, '\0');
  size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t n =
        ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return absl::UnavailableError(
          absl::StrCat("getrandom failed: ", ErrnoText(errno),
                       "; refusing to make a key from a weaker source"));
    }
  }
  return bytes;
}

// Writes `content` to a new file `path` (mode 0600, O_EXCL) and fsyncs it.
// Removes the file again on failure.
absl::Status WriteNewPrivateFile(const std::string& path,
                                 std::string_view content) {
  const int fd = ::open(
      path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(path, " already exists"));
    }
    return absl::InternalError(
        absl::StrCat("cannot create ", path, ": ", ErrnoText(err)));
  }
  std::string_view rest = content;
  int err = 0;
  if (::fchmod(fd, 0600) != 0) err = errno;  // exact, whatever the umask
  while (err == 0 && !rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(path.c_str());
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

int Keygen(const std::vector<char*>& args) {
  constexpr std::string_view kCmd = "keygen";
  if (!Operands(args).empty()) return Usage(kCmd, "unexpected operand");
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return Usage(kCmd, "--out FILE is required");
  const bool force = absl::GetFlag(FLAGS_force);

  absl::StatusOr<std::string> bytes = RandomKeyBytes();
  if (!bytes.ok()) return Fail(kCmd, bytes.status());
  absl::StatusOr<directory::SipKey> key = directory::SipKey::FromBytes(*bytes);
  if (!key.ok()) return Fail(kCmd, key.status());
  const std::string text = absl::StrCat(absl::BytesToHexString(*bytes), "\n");

  if (!force) {
    absl::Status written = WriteNewPrivateFile(out, text);
    if (absl::IsAlreadyExists(written)) {
      return Fail(
          kCmd, absl::StrCat(out,
                             " already exists; refusing to overwrite a key "
                             "(snapshots built with it would no longer load). "
                             "Use --force to replace it"));
    }
    if (!written.ok()) return Fail(kCmd, written);
  } else {
    // Replace atomically: a crash leaves the old key or the new one.
    const std::string tmp = absl::StrCat(out, ".tmp.", ::getpid());
    ::unlink(tmp.c_str());  // a leftover of a crashed run with our pid
    absl::Status written = WriteNewPrivateFile(tmp, text);
    if (!written.ok()) return Fail(kCmd, written);
    if (::rename(tmp.c_str(), out.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return Fail(kCmd, absl::StrCat("cannot rename ", tmp, " to ", out, ": ",
                                     ErrnoText(err)));
    }
  }
  if (absl::Status s = FsyncDir(DirName(out)); !s.ok()) return Fail(kCmd, s);
  std::printf("wrote a new fingerprint key to %s (mode 0600); key id %s\n",
              out.c_str(), HexId(key->Id()).c_str());
  return kExitOk;
}

// --- build ----------------------------------------------------------------

// Everything a build needs, resolved from flags and the optional config.
struct BuildPlan {
  std::vector<std::string> ldif_files;
  bool from_ldap = false;
  ldap::LdapExportOptions ldap;
  snapshot::AttributeMapping mapping;
  std::vector<directory::DomainPolicy> domains;
  std::string key_file;
  std::string out;
  std::string version;  // empty: made from the time and content
  std::string source;
};

// Collects the first text-format error with its position.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit FirstErrorCollector(std::string source)
      : source_(std::move(source)) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) {
      error_ =
          absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message);
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}
  const std::string& error() const { return error_; }

 private:
  std::string source_;
  std::string error_;
};

snapshot::AttributeMapping MappingFromProto(const v1::AttributeMapping& m) {
  snapshot::AttributeMapping mapping;
  mapping.address_attributes.assign(m.address_attributes().begin(),
                                    m.address_attributes().end());
  mapping.proxy_attributes.assign(m.proxy_attributes().begin(),
                                  m.proxy_attributes().end());
  mapping.object_classes.assign(m.object_classes().begin(),
                                m.object_classes().end());
  mapping.active_directory_account_rules = m.active_directory_account_rules();
  return mapping;
}

absl::StatusOr<snapshot::AttributeMapping> ReadMappingFile(
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
    RG_ASSIGN_OR_RETURN(snapshot::Preset p, snapshot::ParsePreset(preset));
    plan.mapping = snapshot::AttributeMapping::ForPreset(p);
  } else if (const std::string file = absl::GetFlag(FLAGS_mapping);
             !file.empty()) {
    RG_ASSIGN_OR_RETURN(plan.mapping, ReadMappingFile(file));
  } else if (config.has_value() && config->directory().has_mapping()) {
    plan.mapping = MappingFromProto(config->directory().mapping());
  } else if (config.has_value() && !config->directory().preset().empty()) {
    RG_ASSIGN_OR_RETURN(snapshot::Preset p,
                        snapshot::ParsePreset(config->directory().preset()));
    plan.mapping = snapshot::AttributeMapping::ForPreset(p);
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
  snapshot::LdifLoadStats entries;  // records, included, disabled, ...
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

int Build(const std::vector<char*>& args) {
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
    snapshot::LdifLoadStats& e = counts.entries;
    absl::StatusOr<ldap::LdapExportStats> exported =
        ldap::ExportLdap(plan.ldap, [&](const snapshot::LdifRecord& record) {
          ++e.records;
          snapshot::MappedEntry mapped =
              snapshot::MapEntry(record, plan.mapping);
          switch (mapped.outcome) {
            case snapshot::EntryOutcome::kIncluded:
              ++e.included;
              for (const std::string& a : mapped.addresses) {
                ++e.addresses;
                add(a);
              }
              break;
            case snapshot::EntryOutcome::kNoAddresses:
              ++e.no_addresses;
              break;
            case snapshot::EntryOutcome::kWrongObjectClass:
              ++e.wrong_object_class;
              break;
            case snapshot::EntryOutcome::kDisabledAccount:
              ++e.disabled;
              break;
          }
        });
    if (!exported.ok()) {
      return Fail(
          kCmd, absl::StrCat(exported.status().message(), "; nothing written"));
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
      absl::StatusOr<snapshot::LdifLoadStats> s =
          snapshot::LoadLdifFile(file, plan.mapping, add);
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
  const snapshot::LdifLoadStats& e = counts.entries;
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

// --- verify ---------------------------------------------------------------

int Verify(const std::vector<char*>& args) {
  constexpr std::string_view kCmd = "verify";
  const std::vector<std::string> operands = Operands(args);
  if (operands.size() != 1)
    return Usage(kCmd, "give exactly one snapshot FILE");
  const std::string& path = operands[0];
  const std::string key_file = absl::GetFlag(FLAGS_key);
  const std::string config_file = absl::GetFlag(FLAGS_config);
  if (!key_file.empty() && !config_file.empty()) {
    return Usage(kCmd, "give --key or --config, not both");
  }

  std::optional<v1::ServerConfig> config;
  std::string key_source = key_file;
  if (!config_file.empty()) {
    absl::StatusOr<v1::ServerConfig> loaded = service::LoadConfig(config_file);
    if (!loaded.ok()) return Fail(kCmd, loaded.status());
    if (loaded->fingerprint_key_file().empty()) {
      return Fail(kCmd, absl::StrCat("the config ", config_file,
                                     " has no fingerprint_key_file"));
    }
    key_source = loaded->fingerprint_key_file();
    config = std::move(*loaded);
  }
  std::optional<directory::SipKey> key;
  if (!key_source.empty()) {
    absl::StatusOr<directory::SipKey> k = ReadKeyFile(key_source);
    if (!k.ok()) return Fail(kCmd, k.status());
    key = *k;
  }

  // Format and checksum first, then the key by id with a message that names
  // the key file, then everything else.
  absl::StatusOr<snapshot::SnapshotInfo> info = snapshot::InspectSnapshot(path);
  if (!info.ok()) return Fail(kCmd, info.status());
  if (key.has_value() && key->Id() != info->key_id) {
    return Fail(kCmd,
                absl::StrCat("snapshot ", path, " was made with key id ",
                             HexId(info->key_id), ", the key in ", key_source,
                             " has key id ", HexId(key->Id())));
  }
  std::string against;
  if (config.has_value()) {
    snapshot::ReadOptions options;
    options.slot_storage = snapshot::SlotStorage::kMappedFile;
    absl::StatusOr<snapshot::LoadedSnapshot> loaded = snapshot::ReadSnapshot(
        path, *key, directory_config::DomainPolicies(*config), options);
    if (!loaded.ok()) return Fail(kCmd, loaded.status());
    if (!loaded->missing_domains.empty()) {
      return Fail(
          kCmd,
          absl::StrCat("snapshot ", path, " lacks served domain(s) ",
                       absl::StrJoin(loaded->missing_domains, ", "), " of ",
                       config_file, "; the server refuses it unless forced"));
    }
    against = absl::StrCat(", every domain of ", config_file, " present");
  } else if (absl::Status s = snapshot::VerifySnapshot(path, key); !s.ok()) {
    return Fail(kCmd, s);
  }
  const std::string key_result =
      key.has_value() ? absl::StrCat("key id ", HexId(info->key_id),
                                     " matches ", key_source)
                      : absl::StrCat("key id ", HexId(info->key_id),
                                     " not checked (no --key or --config)");
  std::printf(
      "OK %s: format %u.%u, checksum %s, %s, %s addresses in %zu "
      "domains%s\n",
      path.c_str(), info->format_version, info->minor_version,
      HexId(info->checksum).c_str(), key_result.c_str(),
      std::to_string(info->address_count).c_str(), info->domains.size(),
      against.c_str());
  return kExitOk;
}

// --- inspect --------------------------------------------------------------

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

const char* ModeName(directory::DomainMode mode) {
  return mode == directory::DomainMode::kMonitor ? "monitor" : "enforce";
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

int Inspect(const std::vector<char*>& args) {
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

}  // namespace

int RunSnapshotCommand(const std::vector<char*>& args) {
  if (args.size() < 3) {
    std::fprintf(stderr, "%s", kSnapshotUsage);
    return kExitUsage;
  }
  const std::string_view sub = args[2];
  if (sub == "keygen") return Keygen(args);
  if (sub == "build") return Build(args);
  if (sub == "verify") return Verify(args);
  if (sub == "inspect") return Inspect(args);
  std::fprintf(stderr, "rcptguard snapshot: unknown subcommand '%s'\n%s",
               args[2], kSnapshotUsage);
  return kExitUsage;
}

}  // namespace rcptguard::cli
