#include "tests/testutil/slapd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace rcptguard::testing {
namespace {

constexpr int kPortAttempts = 5;

bool ConnectsTo(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr),
                            sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string Tail(const std::string& text, size_t max = 2000) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

std::string SlapdConf(const SlapdOptions& o, const std::string& dir) {
  std::string conf = absl::StrCat(
      "# Written by tests/testutil/slapd.cc for one test run.\n"
      "include /etc/ldap/schema/core.schema\n"
      "include /etc/ldap/schema/cosine.schema\n"
      "include /etc/ldap/schema/inetorgperson.schema\n"
      "include ",
      o.ad_schema_file.empty()
          ? SourceDir() + "/tests/testdata/ldap/ad-lite.schema"
          : o.ad_schema_file,
      "\n");
  for (const std::string& schema : o.extra_schema_files)
    absl::StrAppend(&conf, "include ", schema, "\n");
  absl::StrAppend(&conf, "pidfile ", dir, "/slapd.pid\n", "argsfile ", dir,
                  "/slapd.args\n");
  if (!o.tls_certificate_file.empty()) {
    absl::StrAppend(&conf, "TLSCertificateFile ", o.tls_certificate_file, "\n",
                    "TLSCertificateKeyFile ", o.tls_key_file, "\n");
  }
  // Debian builds the backends as modules; other builds may link them in.
  if (::access("/usr/lib/ldap/back_mdb.so", R_OK) == 0) {
    absl::StrAppend(&conf, "modulepath /usr/lib/ldap\nmoduleload back_mdb\n");
  }
  absl::StrAppend(&conf, "sizelimit ", o.size_limit, "\n",
                  "database mdb\n"
                  // Sparse: the file only takes what the data needs.
                  "maxsize 4294967296\n"
                  "suffix \"",
                  o.suffix, "\"\n", "rootdn \"", o.root_dn, "\"\n", "rootpw ",
                  o.root_password, "\n", "directory ", dir, "/db\n",
                  "index objectClass eq\n"
                  "access to attrs=userPassword by anonymous auth by * none\n"
                  "access to * by * read\n",
                  o.extra_database_config, "\n");
  return conf;
}

}  // namespace

std::string StripLdifVersion(std::string_view ldif) {
  size_t pos = 0;
  while (pos < ldif.size()) {
    size_t end = ldif.find('\n', pos);
    if (end == std::string_view::npos) end = ldif.size();
    std::string_view line = ldif.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') {  // comment or blank: keep looking
      pos = end + 1;
      continue;
    }
    if (line.substr(0, 8) == "version:") {
      std::string out(ldif.substr(0, pos));
      if (end < ldif.size()) out.append(ldif.substr(end + 1));
      return out;
    }
    break;
  }
  return std::string(ldif);
}

namespace {

// Binds 127.0.0.1:`port` (0: the kernel picks one) and returns the port
// bound, then closes it; 0 if `port` is taken.
absl::StatusOr<int> TryBindLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    if (port != 0 && err == EADDRINUSE) return 0;
    return absl::InternalError(
        absl::StrCat("bind 127.0.0.1:", port, ": ", std::strerror(err)));
  }
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::InternalError(
        absl::StrCat("getsockname: ", std::strerror(err)));
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

// The kernel's ephemeral port range (ports it gives to bind(0) and to
// outgoing connections).
std::pair<int, int> EphemeralRange() {
  int lo = 32768, hi = 60999;
  const std::string text = ReadFile("/proc/sys/net/ipv4/ip_local_port_range");
  std::vector<std::string> parts =
      absl::StrSplit(text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  if (parts.size() == 2) {
    int a = 0, b = 0;
    if (absl::SimpleAtoi(parts[0], &a) && absl::SimpleAtoi(parts[1], &b)) {
      lo = a;
      hi = b;
    }
  }
  return {lo, hi};
}

}  // namespace

absl::StatusOr<int> PickFreeLoopbackPort() {
  // A port below the ephemeral range: a server elsewhere that binds port 0
  // (rcptguardd's metrics port, say) or an outgoing connection can never
  // be given it between our pick and the caller's bind, as happened with
  // a pick from bind(0) itself. Random, so tests side by side differ.
  constexpr int kLow = 20000, kHigh = 32767;
  const auto [eph_lo, eph_hi] = EphemeralRange();
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(kLow, kHigh);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    if (port >= eph_lo && port <= eph_hi) continue;
    absl::StatusOr<int> bound = TryBindLoopback(port);
    if (!bound.ok()) return bound.status();
    if (*bound != 0) return *bound;
  }
  return TryBindLoopback(0);  // the range is taken or overlaps: as before
}

absl::StatusOr<TlsFiles> MakeSelfSignedCertificate(const std::string& dir,
                                                   const std::string& name) {
  TlsFiles files{absl::StrCat(dir, "/", name, ".crt"),
                 absl::StrCat(dir, "/", name, ".key")};
  std::string output;
  absl::StatusOr<int> status =
      RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048",
                  "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                  "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout",
                  files.key_file, "-out", files.certificate_file},
                 &output, absl::Seconds(60));
  if (!status.ok()) return status.status();
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(absl::StrCat("openssl req failed (status ",
                                            *status, "): ", Tail(output)));
  }
  return files;
}

bool SlapdServer::Installed() {
  return ::access(SlapdPath(), X_OK) == 0 && ::access(SlapaddPath(), X_OK) == 0;
}

absl::StatusOr<std::unique_ptr<SlapdServer>> SlapdServer::Start(
    std::string_view ldif, const SlapdOptions& options) {
  if (!Installed()) {
    return absl::FailedPreconditionError(
        absl::StrCat(SlapdPath(), " or ", SlapaddPath(),
                     " is missing: install the Debian package slapd"));
  }
  std::unique_ptr<SlapdServer> server(new SlapdServer());
  server->options_ = options;
  server->dir_ = MakeTempDir("rg-slapd");
  if (server->dir_.empty())
    return absl::InternalError("cannot create a temp dir for slapd");
  const std::string& dir = server->dir_;
  std::error_code ec;
  std::filesystem::create_directory(dir + "/db", ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("mkdir ", dir, "/db: ", ec.message()));

  const std::string conf_path = dir + "/slapd.conf";
  if (absl::Status s = WriteFile(conf_path, SlapdConf(options, dir)); !s.ok())
    return s;
  const std::string ldif_path = dir + "/data.ldif";
  if (absl::Status s = WriteFile(ldif_path, StripLdifVersion(ldif)); !s.ok())
    return s;

  std::string output;
  absl::StatusOr<int> added =
      RunCommand({SlapaddPath(), "-q", "-f", conf_path, "-l", ldif_path},
                 &output, absl::Seconds(120));
  if (!added.ok()) return added.status();
  if (!WIFEXITED(*added) || WEXITSTATUS(*added) != 0) {
    return absl::InternalError(
        absl::StrCat("slapadd failed (status ", *added, "): ", Tail(output)));
  }

  const std::string log_path = dir + "/slapd.log";
  const bool tls = !options.tls_certificate_file.empty();
  std::string last_error;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    absl::StatusOr<int> port = PickFreeLoopbackPort();
    if (!port.ok()) return port.status();
    server->port_ = *port;
    std::string listeners = server->uri();
    if (tls) {
      absl::StatusOr<int> ldaps_port = PickFreeLoopbackPort();
      if (!ldaps_port.ok()) return ldaps_port.status();
      server->ldaps_port_ = *ldaps_port;
      absl::StrAppend(&listeners, " ", server->ldaps_uri());
    }
    if (absl::Status s = server->process_.Start(
            {SlapdPath(), "-f", conf_path, "-h", listeners, "-d", "0"},
            log_path, log_path);
        !s.ok()) {
      return s;
    }
    const absl::Time deadline = absl::Now() + options.start_timeout;
    bool ready = false;
    while (absl::Now() < deadline) {
      if (!server->process_.running()) break;
      if (ConnectsTo(server->port_) &&
          (!tls || ConnectsTo(server->ldaps_port_))) {
        ready = true;
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (ready) return server;
    const bool exited = !server->process_.running();
    server->process_.Stop(absl::Seconds(5));
    last_error = Tail(ReadFile(log_path));
    if (!exited) {
      return absl::DeadlineExceededError(absl::StrCat(
          "slapd did not accept connections on port ", server->port_,
          " within ", absl::FormatDuration(options.start_timeout), ": ",
          last_error));
    }
    // Exited: most likely the port was taken in the meantime; try another.
  }
  return absl::InternalError(absl::StrCat(
      "slapd did not start after ", kPortAttempts, " ports: ", last_error));
}

SlapdServer::~SlapdServer() {
  Stop(absl::Seconds(5));
  if (!dir_.empty() && std::getenv("RG_KEEP_SLAPD_DIR") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string SlapdServer::uri() const {
  return absl::StrCat("ldap://127.0.0.1:", port_, "/");
}

std::optional<int> SlapdServer::Stop(absl::Duration timeout) {
  process_.Signal(SIGCONT);
  return process_.Stop(timeout);
}

std::string SlapdServer::ldaps_uri() const {
  return ldaps_port_ == 0
             ? std::string()
             : absl::StrCat("ldaps://127.0.0.1:", ldaps_port_, "/");
}

std::string SlapdServer::Log() const { return ReadFile(dir_ + "/slapd.log"); }

}  // namespace rcptguard::testing
