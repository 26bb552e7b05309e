// The files a validated ServerConfig names, checked before anything starts:
// the fingerprint key, each LDIF export, the snapshot, and the TLS
// certificate, key and client CA. rcptguardd runs this both for
// --check_config and at start-up, so a config that checks as valid does not
// then fail to start for a missing file.
//
// Each file must exist, be a regular file and be readable by this process
// (it is opened, never read whole). The first problem comes back naming the
// field and the path, e.g.
//   "directory.ldif_files[1] /etc/rcptguard/users.ldif: cannot open: No
//    such file or directory"
//   "tls.key_file /etc/rcptguard/tls/server.key: cannot open: Permission
//    denied"
// directory.force_reload_file is a trigger whose absence is normal and is
// not checked.
//
// Thread safety: a pure function of its argument and the file system.
#ifndef RCPTGUARD_SERVER_CONFIG_CONFIG_FILES_H_
#define RCPTGUARD_SERVER_CONFIG_CONFIG_FILES_H_

#include "absl/status/status.h"
#include "rcptguard/v1/config.pb.h"

namespace rcptguard::service {

// `config` as LoadConfig returns it (relative paths already resolved).
absl::Status CheckConfigFiles(const v1::ServerConfig& config);

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_CONFIG_CONFIG_FILES_H_
