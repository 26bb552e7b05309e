// A private OpenLDAP slapd for tests: its own temp dir, slapd.conf, mdb
// database and loopback port, loaded from an LDIF string.
//
// SlapdServer::Start writes a slapd.conf (not cn=config) into a fresh
// temporary directory: back_mdb with a large sparse maxsize, the core,
// cosine and inetorgperson schemas from /etc/ldap/schema plus our own
// tests/testdata/ldap/ad-lite.schema (AD / Exchange attributes and classes
// with equality rules that work), a rootdn / rootpw for simple bind, the
// global `sizelimit` you ask for, and `access to * by * read` (userPassword:
// auth only), and optionally a TLS certificate. It loads the LDIF with
// `slapadd -q` (dropping a leading `version: 1` line, which slapadd
// rejects), starts `slapd -f slapd.conf -h ldap://127.0.0.1:PORT/ -d 0` on a
// port found by binding port 0 (retrying with a new port if slapd cannot
// bind it), and returns once the port (and the ldaps:// one) accepts
// connections.
//
// Contract:
//   * slapd is stopped by its PID only: the destructor sends SIGCONT (in
//     case a test stopped it), SIGTERM, waits, then SIGKILL; the temp dir is
//     removed unless RG_KEEP_SLAPD_DIR is set in the environment.
//   * Size limits do not apply to the rootdn (slapd exempts it). To test
//     limits, bind as an ordinary entry with a userPassword in the LDIF.
//   * Limit semantics worth knowing (slapd.conf(5), checked on 2.5):
//     - a plain `sizelimit 500` also caps the TOTAL of a paged search: after
//       500 entries, paged or not, the search ends with sizeLimitExceeded;
//     - `size.soft=500 size.hard=500 size.prtotal=unlimited` makes only
//       unpaged searches stop at 500, as AD's MaxPageSize does; a page may
//       then hold any number of entries, even more than 500;
//     - adding `size.pr=500` caps the page size too, but unlike AD (which
//       serves smaller pages) slapd refuses a larger page size with
//       adminLimitExceeded "illegal pagedResults page size".
//   * Failure to write, load or start returns an error carrying slapadd's or
//     slapd's output.
//
// Thread safety: not thread-safe; one owner (the test).
//
// Example:
//   SlapdOptions o;
//   o.size_limit = "size.soft=500 size.hard=500 size.prtotal=unlimited";
//   absl::StatusOr<std::unique_ptr<SlapdServer>> slapd =
//       SlapdServer::Start(ldif, o);
//   ASSERT_TRUE(slapd.ok()) << slapd.status();
//   options.uri = (*slapd)->uri();
#ifndef RCPTGUARD_TESTS_TESTUTIL_SLAPD_H_
#define RCPTGUARD_TESTS_TESTUTIL_SLAPD_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::testing {

struct SlapdOptions {
  std::string suffix = "dc=example,dc=com";
  std::string root_dn = "cn=admin,dc=example,dc=com";
  std::string root_password = "root-secret-for-tests";
  // Value of the global `sizelimit` directive: "unlimited", "500", or the
  // fine-grained form "size.soft=500 size.hard=500 size.prtotal=unlimited".
  std::string size_limit = "unlimited";
  // The AD / Exchange schema; empty: tests/testdata/ldap/ad-lite.schema.
  std::string ad_schema_file;
  // Schema files `include`d after core, cosine, inetorgperson and ad-lite.
  std::vector<std::string> extra_schema_files;
  // Lines appended to the database section (index, limits, ...).
  std::string extra_database_config;
  // PEM server certificate and key. When set, StartTLS works on the
  // ldap:// listener and a second listener speaks ldaps:// (ldaps_uri()).
  std::string tls_certificate_file;
  std::string tls_key_file;
  // How long slapd may take to accept connections.
  absl::Duration start_timeout = absl::Seconds(20);
};

class SlapdServer {
 public:
  // Sets up, loads `ldif` and starts slapd (see the file comment).
  static absl::StatusOr<std::unique_ptr<SlapdServer>> Start(
      std::string_view ldif, const SlapdOptions& options = {});

  SlapdServer(const SlapdServer&) = delete;
  SlapdServer& operator=(const SlapdServer&) = delete;
  ~SlapdServer();

  // "ldap://127.0.0.1:PORT/".
  std::string uri() const;
  int port() const { return port_; }
  // "ldaps://127.0.0.1:PORT/" when TLS files were given, else "".
  std::string ldaps_uri() const;
  pid_t pid() const { return process_.pid(); }
  // The temp dir holding slapd.conf, the database, slapd.log.
  const std::string& dir() const { return dir_; }
  const SlapdOptions& options() const { return options_; }

  // Sends `sig` to slapd (SIGKILL, SIGSTOP, SIGCONT ... to simulate
  // failures).
  void Signal(int sig) { process_.Signal(sig); }
  bool running() { return process_.running(); }
  // SIGCONT, SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit
  // status as from waitpid.
  std::optional<int> Stop(absl::Duration timeout = absl::Seconds(10));
  // slapd's stdout and stderr so far.
  std::string Log() const;

  // Whether slapd and slapadd are installed (Debian package `slapd`).
  static bool Installed();
  static const char* SlapdPath() { return "/usr/sbin/slapd"; }
  static const char* SlapaddPath() { return "/usr/sbin/slapadd"; }

 private:
  SlapdServer() = default;

  SlapdOptions options_;
  std::string dir_;
  int port_ = 0;
  int ldaps_port_ = 0;
  Subprocess process_;
};

// `ldif` without a leading `version: 1` line (comments and blank lines
// before it are kept).
std::string StripLdifVersion(std::string_view ldif);

struct TlsFiles {
  std::string certificate_file;  // self-signed, so also the CA file to trust
  std::string key_file;
};
// Writes a self-signed certificate for 127.0.0.1 (IP and DNS "localhost"
// subject alternative names) and its unencrypted key into `dir`, with the
// openssl command-line tool (Debian package openssl). `name` distinguishes
// several certificates in one dir.
absl::StatusOr<TlsFiles> MakeSelfSignedCertificate(
    const std::string& dir, const std::string& name = "server");

// A free TCP port on 127.0.0.1 right now, or an error: a random one below
// the kernel's ephemeral range (so no bind(0) elsewhere is given it before
// you bind it), else one the kernel picks. Another test picking at random
// may still take it first (rarely): retry. Prefer port 0 and a port file
// for our own servers.
absl::StatusOr<int> PickFreeLoopbackPort();

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_TESTUTIL_SLAPD_H_
