// The parts of rcptguardd's configuration that describe the directory, as
// the directory library takes them: the fingerprint key and the served
// domains' policies. rcptguardd (server/service) and the admin CLI's
// snapshot commands (clients/cli) read them the same way through here, so
// that a snapshot built on the admin's machine is keyed and scoped exactly
// as the server will read it. No gRPC, no Prometheus: only the config
// proto, the directory types and a bounded file read.
//
//   RG_ASSIGN_OR_RETURN(directory::SipKey key,
//                       directory_config::ReadFingerprintKey(
//                           "/etc/rcptguard/fp.key", "fingerprint key file"));
//   std::vector<directory::DomainPolicy> domains =
//       directory_config::DomainPolicies(config);
//
// Contract: a key file holds 16 raw bytes or 32 hex digits (surrounding
// whitespace ignored); anything else is InvalidArgument naming the file and
// its size. Files are read with ReadRegularFile (common/file.h): a FIFO, a
// device or a file above kMaxKeyFileBytes is refused at once, never read
// without bound.
//
// Thread safety: pure functions of their arguments (and of the file they
// read); safe from any thread.
#ifndef RCPTGUARD_SERVER_DIRECTORY_CONFIG_DIRECTORY_CONFIG_H_
#define RCPTGUARD_SERVER_DIRECTORY_CONFIG_DIRECTORY_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "rcptguard/v1/config.pb.h"
#include "server/directory/directory.h"
#include "server/directory/siphash.h"
#include "server/ldif/mapping.h"

namespace rcptguard::directory_config {

// Reads the fingerprint key in the file at `path`. `what` names the file in
// errors ("fingerprint key file"): NotFound "cannot read WHAT PATH" when it
// does not exist, InvalidArgument "WHAT PATH: ..." when it is not a regular
// file, too large, or holds no key.
absl::StatusOr<directory::SipKey> ReadFingerprintKey(const std::string& path,
                                                     std::string_view what);

// The server's key: read from config.fingerprint_key_file as above (named
// "fingerprint key file"), or a fresh random key when no file is configured.
absl::StatusOr<directory::SipKey> LoadFingerprintKey(
    const v1::ServerConfig& config);

// The served domains of the config as directory policies, in config order.
// A custom attribute mapping of the config (directory.mapping) as the LDIF
// mapper takes it; include_disabled_accounts is left at its default.
ldif::AttributeMapping MappingFromProto(const v1::AttributeMapping& m);

std::vector<directory::DomainPolicy> DomainPolicies(
    const v1::ServerConfig& config);

}  // namespace rcptguard::directory_config

#endif  // RCPTGUARD_SERVER_DIRECTORY_CONFIG_DIRECTORY_CONFIG_H_
