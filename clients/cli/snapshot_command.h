// `rcptguard snapshot ...`: making the fingerprint key and building,
// verifying and inspecting snapshot files on the admin's machine.
//
//   rcptguard snapshot keygen --out FILE [--force]
//   rcptguard snapshot build (--from_ldif FILE[,FILE...] | --from_ldap URI)
//       (--preset ad|openldap | --mapping FILE)
//       (--domains a.com,b.org | --config SERVER_CONFIG)
//       --key FILE --out FILE [--snapshot_version STR] [--source STR]
//       [--base_dn DN [--base_dn DN ...]] [--filter F] [--bind_dn DN]
//       [--password_file FILE] [--start_tls] [--ca_file FILE]
//       [--page_size N] [--timeout 30s]
//   rcptguard snapshot verify FILE [--key FILE | --config SERVER_CONFIG]
//   rcptguard snapshot inspect FILE [--json]
//
// The operator's guide is docs/snapshots.md. Contract:
//   * Exit codes: 0 success, 1 a failed build, verification or I/O, 2 a usage
//     error. Errors go to stderr as one line,
//     "rcptguard snapshot SUBCOMMAND: message".
//   * Nothing here ever prints an address or the key: summaries and
//     `inspect` show counts, domains, the source and the key id only.
//   * `build` writes only after the whole source was read without error and
//     the result holds at least one address in a served domain; the write is
//     WriteSnapshot's atomic temp-file-and-rename, with SIGINT, SIGTERM, SIGHUP
//     and SIGQUIT held back while it runs, so an interrupted build (Ctrl-C,
//     a failed or truncated LDAP export, a killed LDAP server) leaves the
//     previous snapshot untouched and no temporary file behind.
//   * `keygen` never overwrites a key unless --force is given; with --force
//     the old key is replaced atomically (rename), never truncated in place.
//
// Flags are Abseil flags (main.cc also accepts them spelled with dashes,
// --from-ldif). Each subcommand takes only its own flags; main.cc's command
// table says which, refuses the others, and prints the usage for
// `rcptguard snapshot SUBCOMMAND --help`. Flags that can be given several
// times (--from_ldif, --base_dn) keep every occurrence. `--json` (inspect)
// and `--force` (keygen) are the flags of the same names defined in
// main.cc.
//
// Thread safety: RunSnapshotCommand is a command-line entry point; call it
// once, from main, after absl::ParseCommandLine.
#ifndef RCPTGUARD_CLIENTS_CLI_SNAPSHOT_COMMAND_H_
#define RCPTGUARD_CLIENTS_CLI_SNAPSHOT_COMMAND_H_

#include <vector>

namespace rcptguard::cli {

// Exit codes of the snapshot commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Runs `rcptguard snapshot ...`. `args` are the positional arguments left by
// absl::ParseCommandLine: args[0] the program, args[1] "snapshot", args[2]
// the subcommand, then its operands. Returns the process exit code.
int RunSnapshotCommand(const std::vector<char*>& args);

}  // namespace rcptguard::cli

#endif  // RCPTGUARD_CLIENTS_CLI_SNAPSHOT_COMMAND_H_
