#include "clients/cli/snapshot_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"

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
