#include "clients/postfix/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace rcptguard::postfix::internal {

std::string ErrnoText(int err) { return std::strerror(err); }

absl::Status ErrnoStatus(std::string_view what, int err) {
  return absl::UnavailableError(
      absl::StrCat(ToAbsl(what), ": ", ErrnoText(err)));
}

absl::StatusOr<Listener> Listen(const ListenAddress& address, int mode) {
  Listener l;
  if (address.kind == ListenAddress::Kind::kUnix) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (address.path.size() >= sizeof(sun.sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix socket path too long: ", address.path));
    }
    std::memcpy(sun.sun_path, address.path.data(), address.path.size());
    struct stat st;
    if (lstat(address.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrCat(
            address.path, " exists and is not a socket: not replacing it"));
      }
      unlink(address.path.c_str());
    }
    l.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l.fd < 0) return ErrnoStatus("socket", errno);
    if (bind(l.fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
      const int err = errno;
      close(l.fd);
      return ErrnoStatus(absl::StrCat("bind ", address.path), err);
    }
    chmod(address.path.c_str(), static_cast<mode_t>(mode));
    l.unix_path = address.path;
  } else {
    sockaddr_storage ss{};
    socklen_t len;
    int family;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) == 1) {
      family = AF_INET;
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(address.port));
      len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) == 1) {
      family = AF_INET6;
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(address.port));
      len = sizeof(sockaddr_in6);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("not an IP address: \"", address.host, "\""));
    }
    l.fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l.fd < 0) return ErrnoStatus("socket", errno);
    const int one = 1;
    setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      const int err = errno;
      close(l.fd);
      return ErrnoStatus(absl::StrCat("bind ", address.host, ":", address.port),
                         err);
    }
    sockaddr_storage bound{};
    socklen_t blen = sizeof(bound);
    getsockname(l.fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    l.port = ntohs(family == AF_INET
                       ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  if (listen(l.fd, 1024) != 0) {
    const int err = errno;
    close(l.fd);
    return ErrnoStatus("listen", err);
  }
  return l;
}

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return "unknown";
  }
  char host[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(a->sin6_port));
  }
  return "unix";
}

}  // namespace rcptguard::postfix::internal
