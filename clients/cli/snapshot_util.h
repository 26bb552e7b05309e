// Helpers shared by the `rcptguard snapshot` subcommands: the usage text,
// the one-line error and usage reports with their exit codes, and reading
// the fingerprint key file the way rcptguardd does. Internal to the CLI.
//
// Thread safety: command-line code; call from main's thread.
#ifndef RCPTGUARD_CLIENTS_CLI_SNAPSHOT_UTIL_H_
#define RCPTGUARD_CLIENTS_CLI_SNAPSHOT_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/directory/siphash.h"

namespace rcptguard::cli::internal {

extern const char kSnapshotUsage[];

// Prints "rcptguard snapshot COMMAND: message" to stderr; kExitFailure.
int Fail(std::string_view command, std::string_view message);
int Fail(std::string_view command, const absl::Status& status);
// The same followed by the usage text; kExitUsage.
int Usage(std::string_view command, std::string_view message);

// "0x" and 16 hex digits (key ids, checksums).
std::string HexId(uint64_t v);

std::string ErrnoText(int err);

// Operands after "snapshot SUBCOMMAND".
std::vector<std::string> Operands(const std::vector<char*>& args);

// The folder part of `path` ("." when it has none).
std::string DirName(const std::string& path);

// Reads a fingerprint key file the way rcptguardd does
// (directory_config::ReadFingerprintKey), and warns on stderr when others
// may read it.
absl::StatusOr<directory::SipKey> ReadKeyFile(const std::string& path);

// The subcommands; `args` as RunSnapshotCommand takes them. Each returns
// the process exit code.
int RunKeygen(const std::vector<char*>& args);
int RunBuild(const std::vector<char*>& args);
int RunVerify(const std::vector<char*>& args);
int RunInspect(const std::vector<char*>& args);

}  // namespace rcptguard::cli::internal

#endif  // RCPTGUARD_CLIENTS_CLI_SNAPSHOT_UTIL_H_
