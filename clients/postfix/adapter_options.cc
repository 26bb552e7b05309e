#include "clients/postfix/adapter_options.h"

#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace rcptguard::postfix {

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text) {
  ListenAddress a;
  if (text.rfind("unix:", 0) == 0) {
    a.kind = ListenAddress::Kind::kUnix;
    a.path = std::string(text.substr(5));
    if (a.path.empty() || a.path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", ToAbsl(text), "\": unix socket path must be absolute"));
    }
    return a;
  }
  if (text.rfind("inet:", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", ToAbsl(text), "\": expected inet:HOST:PORT or unix:/PATH"));
  }
  std::string_view rest = text.substr(5);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", ToAbsl(text), "\": no port"));
  }
  std::string_view host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", ToAbsl(text), "\": no host"));
  }
  int port;
  if (!absl::SimpleAtoi(ToAbsl(rest.substr(colon + 1)), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", ToAbsl(text), "\": bad port"));
  }
  a.host = std::string(host);
  a.port = port;
  return a;
}

absl::Status ValidateAdapterOptions(const AdapterOptions& o) {
  if (o.policy_listen.empty() && o.socketmap_listen.empty()) {
    return absl::InvalidArgumentError(
        "nothing to serve: set policy_listen and/or socketmap_listen");
  }
  for (const auto& [name, l] : {std::pair<const char*, const std::string*>{
                                    "policy_listen", &o.policy_listen},
                                {"socketmap_listen", &o.socketmap_listen}}) {
    if (l->empty()) continue;
    absl::StatusOr<ListenAddress> a = ParseListenAddress(*l);
    if (!a.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": ", a.status().message()));
    }
  }
  if (o.unix_socket_mode < 0 || o.unix_socket_mode > 0777) {
    return absl::InvalidArgumentError("unix_socket_mode: must be 0..0777");
  }
  if (o.socketmap_name.empty() ||
      o.socketmap_name.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        "socketmap_name: must be non-empty without spaces");
  }
  if (o.policy_limits.max_line < 64 || o.policy_limits.max_line > 1 << 20) {
    return absl::InvalidArgumentError("max_line: must be 64..1048576");
  }
  if (o.policy_limits.max_request_bytes < o.policy_limits.max_line ||
      o.policy_limits.max_request_bytes > 1 << 24) {
    return absl::InvalidArgumentError(
        "max_request_bytes: must be max_line..16777216");
  }
  if (o.policy_limits.max_attributes < 8 ||
      o.policy_limits.max_attributes > 10000) {
    return absl::InvalidArgumentError("max_attributes: must be 8..10000");
  }
  if (o.max_netstring < 64 || o.max_netstring > 1 << 20) {
    return absl::InvalidArgumentError("max_netstring: must be 64..1048576");
  }
  if (o.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections: must be positive");
  }
  if (o.idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_timeout: must be positive");
  }
  if (o.max_tarpit_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_tarpit_delay: must not be negative");
  }
  if (o.drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("drain_timeout: must not be negative");
  }
  return absl::OkStatus();
}

}  // namespace rcptguard::postfix
