#include "server/ldap/ldap_export.h"

#include <lber.h>
#include <ldap.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace rcptguard::ldap {
namespace {

using ldif::LdifAttribute;
using ldif::LdifRecord;

// A password file bigger than this is the wrong file, not a password.
constexpr size_t kMaxPasswordFileBytes = 4096;
// Continuation references logged one by one before only counting them.
constexpr uint64_t kMaxLoggedReferences = 20;
// Longest diagnostic text copied into an error message.
constexpr size_t kMaxDiagnosticBytes = 512;
// Added to connect / StartTLS errors on TLS connections: libldap (GnuTLS)
// reports certificate verification failures only as "(unknown error code)".
constexpr char kTlsHint[] =
    "if the server is reachable, the TLS handshake or certificate verification "
    "failed: check ca_file and that "
    "the host name in the URI is in the server certificate";

// --- RAII for libldap objects ----------------------------------------------

struct LdapUnbinder {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
using LdapHandle = std::unique_ptr<LDAP, LdapUnbinder>;

struct MessageFreer {
  void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
using Message = std::unique_ptr<LDAPMessage, MessageFreer>;

struct ControlFreer {
  void operator()(LDAPControl* c) const { ldap_control_free(c); }
};
struct ControlsFreer {
  void operator()(LDAPControl** c) const { ldap_controls_free(c); }
};
struct LdapMemFreer {
  void operator()(char* p) const { ldap_memfree(p); }
};
using LdapString = std::unique_ptr<char, LdapMemFreer>;
struct StringArrayFreer {
  void operator()(char** v) const {
    ldap_memvfree(reinterpret_cast<void**>(v));
  }
};
struct BerFreer {
  void operator()(BerElement* b) const { ber_free(b, 0); }
};
struct ValuesFreer {
  void operator()(berval** v) const { ldap_value_free_len(v); }
};

// The paged-results cookie; libldap allocates its bytes.
class Cookie {
 public:
  Cookie() = default;
  Cookie(const Cookie&) = delete;
  Cookie& operator=(const Cookie&) = delete;
  ~Cookie() { Reset(); }
  void Reset() {
    if (bv_.bv_val != nullptr) ber_memfree(bv_.bv_val);
    bv_.bv_val = nullptr;
    bv_.bv_len = 0;
  }
  bool empty() const { return bv_.bv_len == 0; }
  berval* get() { return &bv_; }

 private:
  berval bv_{0, nullptr};
};

// Blocks SIGPIPE in this thread for the scope, and swallows a SIGPIPE the
// scope raised: libldap writes to sockets without MSG_NOSIGNAL, and a write
// to a connection the server dropped must become an error, not a crash. The
// signal raised by write(2) is directed at the writing thread, so blocking
// it here is enough; other threads and the process disposition are left
// alone.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;
  ~ScopedSigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

// --- errors ----------------------------------------------------------------

absl::StatusCode CodeForLdapResult(int rc) {
  switch (rc) {
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
    case LDAP_UNAVAILABLE:
    case LDAP_BUSY:
      return absl::StatusCode::kUnavailable;
    case LDAP_TIMEOUT:
    case LDAP_TIMELIMIT_EXCEEDED:
      return absl::StatusCode::kDeadlineExceeded;
    case LDAP_INVALID_CREDENTIALS:
    case LDAP_INAPPROPRIATE_AUTH:
      return absl::StatusCode::kUnauthenticated;
    case LDAP_INSUFFICIENT_ACCESS:
    case LDAP_STRONG_AUTH_REQUIRED:
    case LDAP_CONFIDENTIALITY_REQUIRED:
      return absl::StatusCode::kPermissionDenied;
    case LDAP_NO_SUCH_OBJECT:
      return absl::StatusCode::kNotFound;
    case LDAP_SIZELIMIT_EXCEEDED:
    case LDAP_ADMINLIMIT_EXCEEDED:
    case LDAP_NO_MEMORY:
      return absl::StatusCode::kResourceExhausted;
    case LDAP_FILTER_ERROR:
    case LDAP_PARAM_ERROR:
    case LDAP_INVALID_DN_SYNTAX:
    case LDAP_INVALID_SYNTAX:
    case LDAP_UNDEFINED_TYPE:
    case LDAP_INAPPROPRIATE_MATCHING:
      return absl::StatusCode::kInvalidArgument;
    case LDAP_REFERRAL:
    case LDAP_UNAVAILABLE_CRITICAL_EXTENSION:
    case LDAP_PROTOCOL_ERROR:
    case LDAP_DECODING_ERROR:
    case LDAP_NOT_SUPPORTED:
    case LDAP_UNWILLING_TO_PERFORM:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kUnknown;
  }
}

// Diagnostic text as it goes into an error message: control characters
// blanked, trimmed, bounded.
std::string CleanDiagnostic(std::string_view text) {
  std::string out(text.substr(0, kMaxDiagnosticBytes));
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  out = std::string(absl::StripAsciiWhitespace(out));
  // libldap's text for "no detail"; it only adds noise.
  if (out == "(unknown error code)") out.clear();
  return out;
}

// "<libldap error string> (<code>)[; diagnostic: <text>]".
std::string DescribeLdapError(int rc, std::string_view diagnostic) {
  std::string out = absl::StrCat(ldap_err2string(rc), " (", rc, ")");
  const std::string clean = CleanDiagnostic(diagnostic);
  if (!clean.empty()) absl::StrAppend(&out, "; diagnostic: ", clean);
  return out;
}

// "diagnostic; hint", either part optional.
std::string WithHint(std::string_view diagnostic, std::string_view hint) {
  std::string out = CleanDiagnostic(diagnostic);
  if (!hint.empty())
    absl::StrAppend(&out, out.empty() ? "" : "; ", ToAbsl(hint));
  return out;
}

std::string DiagnosticOf(LDAP* ld) {
  char* raw = nullptr;
  if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &raw) !=
          LDAP_OPT_SUCCESS ||
      raw == nullptr) {
    return "";
  }
  LdapString owned(raw);
  return std::string(raw);
}

int ResultCodeOf(LDAP* ld) {
  int rc = LDAP_OTHER;
  if (ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &rc) != LDAP_OPT_SUCCESS)
    return LDAP_OTHER;
  return rc;
}

absl::Status LdapError(int rc, std::string_view what,
                       std::string_view diagnostic) {
  return absl::Status(
      CodeForLdapResult(rc),
      absl::StrCat(ToAbsl(what), ": ", DescribeLdapError(rc, diagnostic)));
}

// --- options ---------------------------------------------------------------

bool IsLdaps(std::string_view uri) {
  return absl::StartsWithIgnoreCase(ToAbsl(uri), "ldaps://");
}

absl::Status ValidateOptions(const LdapExportOptions& o) {
  const bool ldaps = IsLdaps(o.uri);
  if (!ldaps && !absl::StartsWithIgnoreCase(o.uri, "ldap://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("LDAP URI \"", absl::CHexEscape(o.uri),
                     "\" must start with ldap:// or ldaps://"));
  }
  if (o.uri.find_first_of(" \t\r\n,") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("LDAP URI \"", absl::CHexEscape(o.uri),
                     "\" must name exactly one server"));
  }
  if (o.start_tls && ldaps) {
    return absl::InvalidArgumentError(absl::StrCat(
        "start_tls cannot be combined with an ldaps:// URI (", o.uri, ")"));
  }
  const bool tls = ldaps || o.start_tls;
  if (!tls && !o.ca_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ca_file is set but ", o.uri,
                     " uses no TLS (use ldaps:// or start_tls)"));
  }
  if (!tls && o.tls_insecure_skip_verify) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_insecure_skip_verify is set but ", o.uri, " uses no TLS"));
  }
  if (!o.ca_file.empty()) {
    struct stat st;
    if (::stat(o.ca_file.c_str(), &st) != 0) {
      const int err = errno;
      return absl::Status(absl::ErrnoToStatusCode(err),
                          absl::StrCat("cannot read TLS CA file \"", o.ca_file,
                                       "\": ", std::strerror(err)));
    }
    // Opened, not just stat()ed: a FIFO or device there is refused here
    // (libldap would block on it or read it without end).
    RG_RETURN_IF_ERROR(
        OpenRegularFile("TLS CA file", o.ca_file, kMaxPemFileBytes).status());
  }
  if (o.bind_dn.empty() && !o.password_file.empty()) {
    return absl::InvalidArgumentError(
        "password_file is set but bind_dn is empty (anonymous)");
  }
  if (!o.bind_dn.empty() && o.password_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bind_dn \"", o.bind_dn,
        "\" needs password_file (passwords are never taken from flags)"));
  }
  if (o.base_dns.empty())
    return absl::InvalidArgumentError("no base DN to search");
  for (const std::string& base : o.base_dns) {
    LDAPDN dn = nullptr;
    const int rc = ldap_str2dn(base.c_str(), &dn, LDAP_DN_FORMAT_LDAPV3);
    if (dn != nullptr) ldap_dnfree(dn);
    if (rc != LDAP_SUCCESS || base.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "base DN \"", absl::CHexEscape(base), "\" is not a valid DN"));
    }
  }
  if (o.filter.empty())
    return absl::InvalidArgumentError("empty LDAP search filter");
  if (o.attributes.empty())
    return absl::InvalidArgumentError("no attributes to request");
  for (const std::string& a : o.attributes) {
    if (a.empty() || a.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "requested attribute \"", absl::CHexEscape(a), "\" is not a name"));
    }
  }
  if (o.page_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be positive, not ", o.page_size));
  }
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  return absl::OkStatus();
}

// Reads the bind password. The password itself never enters a message.
absl::StatusOr<std::string> ReadPassword(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot read LDAP bind password file \"",
                                     path, "\": ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "LDAP bind password file \"", path, "\" is not a regular file"));
  }
  if ((st.st_mode & 0077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(st.st_mode & 07777));
    LogWarning("ldap_password_file_not_private",
               {{"path", path}, {"mode", mode}});
  }
  // Opened non-blocking and checked again on the descriptor: the path may
  // have been replaced (by a FIFO, say) since the stat above.
  RG_ASSIGN_OR_RETURN(OpenedFile file,
                      OpenRegularFile("LDAP bind password file", path,
                                      std::numeric_limits<uint64_t>::max()));
  std::string password(kMaxPasswordFileBytes + 1, '\0');
  size_t have = 0;
  while (have < password.size()) {
    const ssize_t n =
        ::read(file.fd.get(), password.data() + have, password.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::DataLossError(
          absl::StrCat("error reading LDAP bind password file \"", path, "\""));
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  password.resize(have);
  if (password.size() > kMaxPasswordFileBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("LDAP bind password file \"", path, "\" is over ",
                     kMaxPasswordFileBytes, " bytes: not a password file"));
  }
  if (absl::EndsWith(password, "\r\n")) {
    password.resize(password.size() - 2);
  } else if (absl::EndsWith(password, "\n")) {
    password.resize(password.size() - 1);
  }
  if (password.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("LDAP bind password file \"", path,
                     "\" is empty: an empty password would be an "
                     "unauthenticated (anonymous) bind"));
  }
  return password;
}

// Best effort: zeroes the whole buffer (the read left the password's tail
// beyond size() too), not copies libldap or the stream buffer made.
void Wipe(std::string* secret) {
  secret->resize(secret->capacity());
  volatile char* p = secret->data();
  for (size_t i = 0; i < secret->size(); ++i) p[i] = '\0';
  secret->clear();
}

// --- one export -------------------------------------------------------------

class Exporter {
 public:
  Exporter(const LdapExportOptions& options,
           absl::FunctionRef<void(const LdifRecord&)> sink)
      : options_(options), sink_(sink) {}

  absl::StatusOr<LdapExportStats> Run() {
    RG_RETURN_IF_ERROR(ValidateOptions(options_));
    std::string password;
    if (!options_.bind_dn.empty()) {
      RG_ASSIGN_OR_RETURN(password, ReadPassword(options_.password_file));
    }
    absl::Status connected = Connect(&password);
    Wipe(&password);
    RG_RETURN_IF_ERROR(connected);
    for (const std::string& base : options_.base_dns) {
      RG_RETURN_IF_ERROR(SearchBase(base));
    }
    LogInfo("ldap_export_done", {{"server", options_.uri},
                                 {"entries", stats_.entries},
                                 {"pages", stats_.pages},
                                 {"references_skipped", stats_.references}});
    return stats_;
  }

 private:
  absl::Status SetOption(int option, const void* value, std::string_view name) {
    const int rc = ldap_set_option(ld_.get(), option, value);
    if (rc != LDAP_OPT_SUCCESS) {
      return LdapError(
          rc, absl::StrCat("LDAP option ", ToAbsl(name), " for ", options_.uri),
          DiagnosticOf(ld_.get()));
    }
    return absl::OkStatus();
  }

  absl::Status Connect(std::string* password) {
    const bool ldaps = IsLdaps(options_.uri);
    const bool tls = ldaps || options_.start_tls;
    LogInfo(
        "ldap_export_started",
        {{"server", options_.uri},
         {"tls", ldaps ? "ldaps" : (options_.start_tls ? "starttls" : "none")},
         {"bind", options_.bind_dn.empty() ? std::string("anonymous")
                                           : options_.bind_dn},
         {"bases", static_cast<uint64_t>(options_.base_dns.size())},
         {"page_size", options_.page_size}});
    if (options_.tls_insecure_skip_verify) {
      LogError("ldap_tls_verification_disabled",
               {{"server", options_.uri},
                {"why",
                 "tls_insecure_skip_verify is set; for tests only, anyone in "
                 "the path can read the directory"}});
    }
    if (!tls && !options_.bind_dn.empty()) {
      LogWarning(
          "ldap_bind_without_tls",
          {{"server", options_.uri},
           {"why", "the bind password crosses the network in clear text"}});
    }

    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, options_.uri.c_str());
    ld_.reset(raw);
    if (rc != LDAP_SUCCESS || raw == nullptr) {
      return LdapError(
          rc == LDAP_SUCCESS ? LDAP_PARAM_ERROR : rc,
          absl::StrCat("LDAP URI ", options_.uri, " rejected by libldap"), "");
    }
    const int version = LDAP_VERSION3;
    RG_RETURN_IF_ERROR(
        SetOption(LDAP_OPT_PROTOCOL_VERSION, &version, "protocol version"));
    RG_RETURN_IF_ERROR(
        SetOption(LDAP_OPT_REFERRALS, LDAP_OPT_OFF, "referrals"));
    RG_RETURN_IF_ERROR(SetOption(LDAP_OPT_RESTART, LDAP_OPT_ON, "restart"));
    const timeval tv = absl::ToTimeval(options_.timeout);
    RG_RETURN_IF_ERROR(
        SetOption(LDAP_OPT_NETWORK_TIMEOUT, &tv, "network timeout"));
    // Bounds the synchronous calls below (StartTLS, bind).
    RG_RETURN_IF_ERROR(SetOption(LDAP_OPT_TIMEOUT, &tv, "timeout"));
    if (tls) {
      const int require = options_.tls_insecure_skip_verify
                              ? LDAP_OPT_X_TLS_NEVER
                              : LDAP_OPT_X_TLS_DEMAND;
      RG_RETURN_IF_ERROR(
          SetOption(LDAP_OPT_X_TLS_REQUIRE_CERT, &require, "TLS require cert"));
      if (!options_.ca_file.empty()) {
        RG_RETURN_IF_ERROR(SetOption(LDAP_OPT_X_TLS_CACERTFILE,
                                     options_.ca_file.c_str(), "TLS CA file"));
      }
      const int min_version = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
      RG_RETURN_IF_ERROR(SetOption(LDAP_OPT_X_TLS_PROTOCOL_MIN, &min_version,
                                   "TLS minimum version"));
      // A TLS context of this handle's own, built from the options above
      // (not the process-wide one from ldap.conf).
      const int is_server = 0;
      RG_RETURN_IF_ERROR(
          SetOption(LDAP_OPT_X_TLS_NEWCTX, &is_server, "new TLS context"));
    }

    rc = ldap_connect(ld_.get());
    if (rc != LDAP_SUCCESS) {
      return LdapError(
          rc, absl::StrCat("LDAP connect to ", options_.uri, " failed"),
          WithHint(DiagnosticOf(ld_.get()), ldaps ? kTlsHint : ""));
    }
    if (options_.start_tls) {
      rc = ldap_start_tls_s(ld_.get(), nullptr, nullptr);
      if (rc != LDAP_SUCCESS) {
        return LdapError(
            rc,
            absl::StrCat("LDAP StartTLS on ", options_.uri,
                         " failed (refusing to continue without TLS)"),
            WithHint(DiagnosticOf(ld_.get()),
                     rc == LDAP_CONNECT_ERROR ? kTlsHint : ""));
      }
    }
    if (!options_.bind_dn.empty()) {
      berval cred;
      cred.bv_val = password->data();
      cred.bv_len = password->size();
      rc = ldap_sasl_bind_s(ld_.get(), options_.bind_dn.c_str(),
                            LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
      if (rc != LDAP_SUCCESS) {
        return LdapError(rc,
                         absl::StrCat("LDAP bind to ", options_.uri, " as \"",
                                      options_.bind_dn, "\" failed"),
                         DiagnosticOf(ld_.get()));
      }
    }
    return absl::OkStatus();
  }

  std::string SearchWhat(std::string_view base) const {
    return absl::StrCat("LDAP search of \"", ToAbsl(base), "\" on ",
                        options_.uri);
  }

  absl::Status SearchBase(const std::string& base) {
    std::vector<char*> attrs;
    for (const std::string& a : options_.attributes)
      attrs.push_back(const_cast<char*>(a.c_str()));
    attrs.push_back(nullptr);
    // Server-side time limit in whole seconds; 0 would mean "none".
    timeval server_limit{};
    server_limit.tv_sec =
        std::max<int64_t>(1, absl::ToInt64Seconds(options_.timeout));

    Cookie cookie;
    uint64_t base_entries = 0;
    uint64_t page = 0;
    while (true) {
      ++page;
      const std::string where =
          absl::StrCat(SearchWhat(base), " failed on page ", page, " after ",
                       base_entries, " entries");
      LDAPControl* page_control = nullptr;
      int rc = ldap_create_page_control(ld_.get(), options_.page_size,
                                        cookie.empty() ? nullptr : cookie.get(),
                                        /*iscritical=*/1, &page_control);
      if (rc != LDAP_SUCCESS)
        return LdapError(rc, where, "cannot encode the paged-results control");
      std::unique_ptr<LDAPControl, ControlFreer> page_control_owner(
          page_control);
      LDAPControl* server_controls[] = {page_control, nullptr};
      int msgid = -1;
      rc = ldap_search_ext(ld_.get(), base.c_str(), LDAP_SCOPE_SUBTREE,
                           options_.filter.c_str(), attrs.data(),
                           /*attrsonly=*/0, server_controls, nullptr,
                           &server_limit, LDAP_NO_LIMIT, &msgid);
      if (rc != LDAP_SUCCESS)
        return LdapError(rc, where, DiagnosticOf(ld_.get()));

      const absl::Time deadline = absl::Now() + options_.timeout;
      while (true) {
        const absl::Duration remaining = deadline - absl::Now();
        if (remaining <= absl::ZeroDuration()) return PageTimeout(msgid, where);
        timeval wait = absl::ToTimeval(remaining);
        LDAPMessage* raw = nullptr;
        const int type =
            ldap_result(ld_.get(), msgid, LDAP_MSG_ONE, &wait, &raw);
        Message message(raw);
        if (type == 0) return PageTimeout(msgid, where);
        if (type == -1) {
          return LdapError(ResultCodeOf(ld_.get()),
                           absl::StrCat(where, " (connection lost)"),
                           DiagnosticOf(ld_.get()));
        }
        if (type == LDAP_RES_SEARCH_ENTRY) {
          RG_RETURN_IF_ERROR(HandleEntry(message.get(), where));
          ++base_entries;
          continue;
        }
        if (type == LDAP_RES_SEARCH_REFERENCE) {
          HandleReference(message.get(), base);
          continue;
        }
        if (type != LDAP_RES_SEARCH_RESULT) {
          return absl::FailedPreconditionError(absl::StrCat(
              where, ": unexpected LDAP message type 0x", absl::Hex(type)));
        }
        RG_RETURN_IF_ERROR(HandleResult(message.get(), where, &cookie));
        break;
      }
      ++stats_.pages;
      if (cookie.empty()) break;
    }
    LogInfo("ldap_export_base_done", {{"server", options_.uri},
                                      {"base", base},
                                      {"entries", base_entries},
                                      {"pages", page}});
    return absl::OkStatus();
  }

  absl::Status PageTimeout(int msgid, const std::string& where) {
    ldap_abandon_ext(ld_.get(), msgid, nullptr, nullptr);
    return absl::DeadlineExceededError(
        absl::StrCat(where, ": no complete answer within ",
                     absl::FormatDuration(options_.timeout)));
  }

  absl::Status HandleEntry(LDAPMessage* entry, const std::string& where) {
    LDAP* ld = ld_.get();
    LdifRecord record;
    {
      char* raw_dn = ldap_get_dn(ld, entry);
      if (raw_dn == nullptr) {
        return LdapError(ResultCodeOf(ld),
                         absl::StrCat(where, ": entry without a DN"), "");
      }
      LdapString dn(raw_dn);
      record.dn = raw_dn;
    }
    int ok = LDAP_SUCCESS;
    ldap_set_option(ld, LDAP_OPT_RESULT_CODE, &ok);
    size_t bytes = 0;
    BerElement* raw_ber = nullptr;
    std::unique_ptr<BerElement, BerFreer> ber;
    for (char* raw_attr = ldap_first_attribute(ld, entry, &raw_ber);
         raw_attr != nullptr;
         raw_attr = ldap_next_attribute(ld, entry, raw_ber)) {
      if (!ber) ber.reset(raw_ber);
      LdapString attr(raw_attr);
      std::string_view description(raw_attr);
      const size_t semicolon = description.find(';');
      std::string name(description.substr(0, semicolon));
      std::string options(semicolon == std::string_view::npos
                              ? std::string_view()
                              : description.substr(semicolon));
      absl::AsciiStrToLower(&name);
      absl::AsciiStrToLower(&options);
      if (absl::StrContains(options, ";range=")) {
        return absl::FailedPreconditionError(absl::StrCat(
            where, ": entry \"", record.dn, "\": attribute ",
            ToAbsl(description),
            " came back in ranges: the server holds more values than it "
            "returns at once (AD MaxValRange); "
            "ranged retrieval is not supported, refusing a truncated export"));
      }
      std::unique_ptr<berval*, ValuesFreer> values(
          ldap_get_values_len(ld, entry, raw_attr));
      if (!values) continue;  // no values (e.g. a type-only answer)
      for (berval** v = values.get(); *v != nullptr; ++v) {
        bytes += (*v)->bv_len;
        if (record.attributes.size() >= ldif::kMaxLdifRecordValues ||
            bytes > ldif::kMaxLdifRecordBytes) {
          return absl::ResourceExhaustedError(
              absl::StrCat(where, ": entry \"", record.dn, "\" has over ",
                           ldif::kMaxLdifRecordValues, " values or ",
                           ldif::kMaxLdifRecordBytes, " bytes of values"));
        }
        record.attributes.push_back(LdifAttribute{
            name, options, std::string((*v)->bv_val, (*v)->bv_len)});
      }
    }
    if (!ber && raw_ber != nullptr) ber.reset(raw_ber);
    const int rc = ResultCodeOf(ld);
    if (rc != LDAP_SUCCESS) {
      return LdapError(
          rc, absl::StrCat(where, ": cannot decode entry \"", record.dn, "\""),
          "");
    }
    ++stats_.entries;
    sink_(record);
    return absl::OkStatus();
  }

  void HandleReference(LDAPMessage* message, const std::string& base) {
    ++stats_.references;
    if (stats_.references > kMaxLoggedReferences) return;
    char** raw = nullptr;
    std::string urls;
    if (ldap_parse_reference(ld_.get(), message, &raw, nullptr, 0) ==
            LDAP_SUCCESS &&
        raw != nullptr) {
      std::unique_ptr<char*, StringArrayFreer> owned(raw);
      std::vector<std::string> list;
      for (char** u = raw; *u != nullptr; ++u) list.emplace_back(*u);
      urls = absl::StrJoin(list, " ");
    }
    LogWarning("ldap_search_reference_skipped",
               {{"server", options_.uri},
                {"base", base},
                {"reference", CleanDiagnostic(urls)},
                {"why",
                 "continuation references are not followed; list that naming "
                 "context as a base DN if it "
                 "holds recipients"}});
  }

  absl::Status HandleResult(LDAPMessage* message, const std::string& where,
                            Cookie* cookie) {
    LDAP* ld = ld_.get();
    int result = LDAP_SUCCESS;
    char* raw_matched = nullptr;
    char* raw_text = nullptr;
    char** raw_referrals = nullptr;
    LDAPControl** raw_controls = nullptr;
    const int rc =
        ldap_parse_result(ld, message, &result, &raw_matched, &raw_text,
                          &raw_referrals, &raw_controls, /*freeit=*/0);
    LdapString matched(raw_matched);
    LdapString text(raw_text);
    std::unique_ptr<char*, StringArrayFreer> referrals(raw_referrals);
    std::unique_ptr<LDAPControl*, ControlsFreer> controls(raw_controls);
    if (rc != LDAP_SUCCESS)
      return LdapError(
          rc, absl::StrCat(where, ": cannot parse the search result"), "");
    if (result != LDAP_SUCCESS) {
      std::string diagnostic = raw_text != nullptr ? raw_text : "";
      if (result == LDAP_REFERRAL && raw_referrals != nullptr) {
        std::vector<std::string> list;
        for (char** r = raw_referrals; *r != nullptr; ++r)
          list.emplace_back(*r);
        absl::StrAppend(
            &diagnostic, diagnostic.empty() ? "" : "; ", "referred to ",
            absl::StrJoin(list, " "),
            " (referrals are not followed: point the URI at that server)");
      }
      return LdapError(result, where, diagnostic);
    }
    LDAPControl* page =
        ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, raw_controls, nullptr);
    if (page == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(where,
                       ": the page came without the paged-results response "
                       "control (RFC 2696); "
                       "the server may not support paging, so the export may "
                       "be incomplete"));
    }
    ber_int_t estimate = 0;
    cookie->Reset();
    const int parsed =
        ldap_parse_pageresponse_control(ld, page, &estimate, cookie->get());
    if (parsed != LDAP_SUCCESS) {
      return LdapError(
          parsed,
          absl::StrCat(where,
                       ": cannot decode the paged-results response control"),
          "");
    }
    return absl::OkStatus();
  }

  const LdapExportOptions& options_;
  const absl::FunctionRef<void(const LdifRecord&)> sink_;
  LdapHandle ld_;
  LdapExportStats stats_;
};

// RFC 4515 value escaping.
std::string EscapeFilterValue(std::string_view value) {
  std::string out;
  for (const char c : value) {
    switch (c) {
      case '*':
        out += "\\2a";
        break;
      case '(':
        out += "\\28";
        break;
      case ')':
        out += "\\29";
        break;
      case '\\':
        out += "\\5c";
        break;
      case '\0':
        out += "\\00";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// "(|A)" for one term is just "A".
std::string Or(const std::vector<std::string>& terms) {
  if (terms.size() == 1) return terms[0];
  return absl::StrCat("(|", absl::StrJoin(terms, ""), ")");
}

void AddUnique(std::vector<std::string>* list, const std::string& name) {
  for (const std::string& n : *list) {
    if (absl::EqualsIgnoreCase(n, name)) return;
  }
  list->push_back(name);
}

}  // namespace

absl::StatusOr<LdapExportStats> ExportLdap(
    const LdapExportOptions& options,
    absl::FunctionRef<void(const ldif::LdifRecord&)> sink) {
  ScopedSigpipeBlock no_sigpipe;
  Exporter exporter(options, sink);
  return exporter.Run();
}

std::string DefaultFilter(const ldif::AttributeMapping& mapping) {
  std::vector<std::string> parts;
  if (!mapping.object_classes.empty()) {
    std::vector<std::string> classes;
    for (const std::string& oc : mapping.object_classes) {
      classes.push_back(
          absl::StrCat("(objectClass=", EscapeFilterValue(oc), ")"));
    }
    parts.push_back(Or(classes));
  }
  std::vector<std::string> present;
  for (const std::vector<std::string>* list :
       {&mapping.address_attributes, &mapping.proxy_attributes}) {
    // Attribute names are not values: they are not escaped (a mapping that
    // passed AttributeMapping::Validate() holds only valid names).
    for (const std::string& a : *list)
      present.push_back(absl::StrCat("(", a, "=*)"));
  }
  if (!present.empty()) parts.push_back(Or(present));
  if (mapping.active_directory_account_rules)
    parts.push_back("(!(objectClass=computer))");
  if (parts.empty()) return "(objectClass=*)";
  if (parts.size() == 1) return parts[0];
  return absl::StrCat("(&", absl::StrJoin(parts, ""), ")");
}

std::string NoEntriesHint(const LdapExportOptions& options,
                          const ldif::AttributeMapping& mapping) {
  // The filter without the AD account rules' computer term: what a server
  // without the AD schema can evaluate.
  ldif::AttributeMapping plain = mapping;
  plain.active_directory_account_rules = false;
  std::vector<std::string> bases;
  for (const std::string& base : options.base_dns) {
    bases.push_back(absl::StrCat("\"", base, "\""));
  }
  return absl::StrCat(
      "the search of base DN(s) ", absl::StrJoin(bases, ", "), " on ",
      options.uri, " with filter \"", options.filter,
      "\" returned no entry: check the base DN and the bind account's read "
      "access; a server whose schema lacks an object class the filter names "
      "(the ad preset's filter names \"computer\"; OpenLDAP without an AD "
      "schema evaluates such a term as undefined, so nothing matches) needs "
      "its own filter: pass --filter, e.g. --filter='",
      DefaultFilter(plain), "'");
}

std::vector<std::string> RequestedAttributes(
    const ldif::AttributeMapping& mapping) {
  std::vector<std::string> attributes;
  for (const std::string& a : mapping.address_attributes)
    AddUnique(&attributes, a);
  for (const std::string& a : mapping.proxy_attributes)
    AddUnique(&attributes, a);
  AddUnique(&attributes, "objectClass");
  if (mapping.active_directory_account_rules) {
    AddUnique(&attributes, "userAccountControl");
    AddUnique(&attributes, "msExchRecipientTypeDetails");
  }
  return attributes;
}

}  // namespace rcptguard::ldap
