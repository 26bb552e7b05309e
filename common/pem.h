// Reading PEM files (certificates, keys, CA bundles) for TLS, with errors
// that name the setting and the path. Shared by rcptguardd's tls settings
// and the client library's TlsOptions.
//
// Thread safety: thread-safe (no shared state).
#ifndef RCPTGUARD_COMMON_PEM_H_
#define RCPTGUARD_COMMON_PEM_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rcptguard {

// The whole file at `path`, read with ReadRegularFile (common/file.h):
// at most kMaxPemFileBytes, never a FIFO or device. NotFound
// `<what>: cannot read "<path>"` when it does not exist; the errors of
// ReadRegularFile (`<what> <path>: is a FIFO, not a regular file`, ...)
// otherwise; InvalidArgument `<what>: "<path>" holds no PEM block` when it
// has no "-----BEGIN " line.
absl::StatusOr<std::string> ReadPemFile(std::string_view what,
                                        const std::string& path);

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_PEM_H_
