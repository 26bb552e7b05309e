#include "clients/cli/snapshot_util.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_format.h"
#include "clients/cli/snapshot_command.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "server/directory_config/directory_config.h"

namespace rcptguard::cli::internal {

const char kSnapshotUsage[] =
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

std::vector<std::string> Operands(const std::vector<char*>& args) {
  std::vector<std::string> out;
  for (size_t i = 3; i < args.size(); ++i) out.emplace_back(args[i]);
  return out;
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

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

}  // namespace rcptguard::cli::internal
