#include "tests/testutil/postfix.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testutil/slapd.h"

namespace rcptguard::testing {
namespace {

constexpr char kPostfix[] = "/usr/sbin/postfix";
constexpr char kPostconf[] = "/usr/sbin/postconf";
constexpr char kSmtpSink[] = "/usr/sbin/smtp-sink";

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// A process that is gone or a zombie (a daemonized master whose parent
// does not reap it) counts as stopped.
bool Alive(int pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  return ReadProcStat(absl::StrCat("/proc/", pid, "/stat")).state != 'Z';
}

// Whether `pid` is a child of `parent` that has not exited.
bool LiveChildOf(int pid, int parent) {
  const ProcStat s = ReadProcStat(absl::StrCat("/proc/", pid, "/stat"));
  return s.ppid == parent && s.state != 0 && s.state != 'Z';
}

// The live children of `parent`.
std::vector<int> ChildrenOf(int parent) {
  std::vector<int> out;
  if (parent <= 0) return out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid) && LiveChildOf(pid, parent)) {
      out.push_back(pid);
    }
  }
  closedir(d);
  return out;
}

std::string MasterCf(int smtp_port) {
  // No chroot: the private instance has no chroot tree.
  return absl::StrCat("127.0.0.1:", smtp_port, " inet n - n - - smtpd\n", R"(
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
)");
}

}  // namespace

std::string SmtpReply::ToString() const {
  return absl::StrCat(code, " ", text);
}

SmtpClient::~SmtpClient() { Close(); }

void SmtpClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buffer_.clear();
}

absl::Status SmtpClient::Connect(int port, absl::Duration timeout) {
  Close();
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Errno("socket");
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    absl::Status s = Errno(absl::StrCat("connect 127.0.0.1:", port));
    Close();
    return s;
  }
  absl::StatusOr<SmtpReply> greeting = ReadReply();
  if (!greeting.ok()) return greeting.status();
  if (greeting->code != 220) {
    return absl::UnavailableError(
        absl::StrCat("greeting: ", greeting->ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<SmtpReply> SmtpClient::ReadReply() {
  SmtpReply reply;
  std::vector<std::string> lines;
  for (;;) {
    size_t nl;
    while ((nl = buffer_.find("\r\n")) == std::string::npos) {
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        return n == 0 ? absl::UnavailableError("connection closed")
                      : Errno("recv");
      }
      buffer_.append(buf, static_cast<size_t>(n));
    }
    const std::string line = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 2);
    int code;
    if (line.size() < 3 || !absl::SimpleAtoi(line.substr(0, 3), &code)) {
      return absl::DataLossError(absl::StrCat("bad reply line: ", line));
    }
    reply.code = code;
    lines.push_back(line.size() > 4 ? line.substr(4) : "");
    if (line.size() == 3 || line[3] == ' ') break;
  }
  reply.text = absl::StrJoin(lines, "\n");
  return reply;
}

absl::StatusOr<SmtpReply> SmtpClient::Command(std::string_view line) {
  if (fd_ < 0) return absl::FailedPreconditionError("not connected");
  std::string out(line);
  out += "\r\n";
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n =
        send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return Errno("send");
    sent += static_cast<size_t>(n);
  }
  return ReadReply();
}

absl::StatusOr<SmtpReply> SmtpClient::Data(std::string_view message) {
  absl::StatusOr<SmtpReply> go = Command("DATA");
  if (!go.ok()) return go;
  if (go->code != 354) return go;
  std::string body(message);
  if (!body.empty() &&
      body.substr(body.size() - std::min<size_t>(2, body.size())) != "\r\n") {
    body += "\r\n";
  }
  body += ".";
  return Command(body);
}

bool PostfixInstance::Available() {
  return geteuid() == 0 && access(kPostfix, X_OK) == 0 &&
         access(kSmtpSink, X_OK) == 0 && getpwnam("postfix") != nullptr;
}

PostfixInstance::~PostfixInstance() {
  if (started_ || sink_.pid() > 0) Stop().IgnoreError();
}

absl::Status PostfixInstance::Postfix(const std::vector<std::string>& args,
                                      std::string* output) {
  std::vector<std::string> argv = {kPostfix, "-c", config_dir()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  absl::StatusOr<int> rc = RunCommand(argv, &out, absl::Seconds(60));
  if (output != nullptr) *output = out;
  if (!rc.ok()) return rc.status();
  if (*rc != 0) {
    // Postfix reports fatal start-up errors to syslog or its maillog only.
    return absl::InternalError(
        absl::StrCat("postfix ", absl::StrJoin(args, " "), " exited with ", *rc,
                     ": ", out, "\nmaillog:\n", maillog()));
  }
  return absl::OkStatus();
}

absl::Status PostfixInstance::Start(
    const std::vector<std::pair<std::string, std::string>>& main_cf) {
  if (!Available()) {
    return absl::FailedPreconditionError(
        "postfix is not installed or we are not root");
  }
  dir_ = MakeTempDir("rg-postfix");
  if (dir_.empty()) return Errno("mkdtemp");
  for (const std::string sub : {"", "/config", "/queue", "/data", "/sink"}) {
    const std::string path = dir_ + sub;
    if (!sub.empty() && mkdir(path.c_str(), 0755) != 0) {
      return Errno("mkdir " + path);
    }
    chmod(path.c_str(), 0755);
  }
  const passwd* pw = getpwnam("postfix");
  if (chown((dir_ + "/data").c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return Errno("chown data");
  }
  chmod((dir_ + "/sink").c_str(), 0777);  // smtp-sink runs as nobody
  absl::StatusOr<int> smtp_port = PickFreeLoopbackPort();
  if (!smtp_port.ok()) return smtp_port.status();
  absl::StatusOr<int> sink_port = PickFreeLoopbackPort();
  while (sink_port.ok() && *sink_port == *smtp_port) {
    sink_port = PickFreeLoopbackPort();
  }
  if (!sink_port.ok()) return sink_port.status();
  smtp_port_ = *smtp_port;
  sink_port_ = *sink_port;
  const std::string sink_hop = absl::StrCat("smtp:[127.0.0.1]:", sink_port_);
  std::vector<std::pair<std::string, std::string>> settings = {
      {"compatibility_level", "3.6"},
      {"queue_directory", dir_ + "/queue"},
      {"data_directory", dir_ + "/data"},
      {"command_directory", "/usr/sbin"},
      {"daemon_directory", "/usr/lib/postfix/sbin"},
      {"shlib_directory", "/usr/lib/postfix"},
      {"mail_owner", "postfix"},
      {"setgid_group", "postdrop"},
      {"myhostname", "rcptguard-test.localdomain"},
      {"mydomain", "localdomain"},
      {"myorigin", "$myhostname"},
      {"mydestination", ""},
      {"local_recipient_maps", ""},
      {"alias_maps", ""},
      {"alias_database", ""},
      {"inet_interfaces", "127.0.0.1"},
      {"inet_protocols", "ipv4"},
      {"mynetworks", "127.0.0.0/8"},
      {"relay_domains", "example.com, example.org, mail.example.com"},
      // Everything goes to smtp-sink: nothing leaves the machine.
      {"default_transport", sink_hop},
      {"relay_transport", sink_hop},
      {"smtp_dns_support_level", "disabled"},
      {"smtpd_peername_lookup", "no"},
      // Loopback clients are treated as Internet clients: no
      // permit_mynetworks anywhere.
      {"smtpd_relay_restrictions", "reject_unauth_destination"},
      {"smtpd_recipient_restrictions", "reject_unauth_destination"},
      // Postfix's own error tarpit would dominate timings.
      {"in_flow_delay", "0"},
      {"smtpd_error_sleep_time", "0"},
      {"smtpd_soft_error_limit", "1000"},
      {"smtpd_hard_error_limit", "1000"},
      {"maillog_file", dir_ + "/maillog"},
      {"maillog_file_prefixes", dir_},
      {"biff", "no"},
  };
  // Each parameter once: a test's own value replaces the default above.
  // A duplicate makes every Postfix daemon log "overriding earlier entry"
  // at start, postlogd included, which logs through its own socket: with
  // the kernel's queue of 10 datagrams full of the other daemons' copies
  // before it reads, postlogd blocked sending to itself, and every daemon
  // after it blocked on its next log line (an smtpd that never greeted).
  for (const auto& setting : main_cf) {
    auto same =
        std::find_if(settings.begin(), settings.end(),
                     [&](const auto& s) { return s.first == setting.first; });
    if (same != settings.end()) {
      same->second = setting.second;
    } else {
      settings.push_back(setting);
    }
  }
  std::string text;
  for (const auto& [name, value] : settings) {
    absl::StrAppend(&text, name, " = ", value, "\n");
  }
  absl::Status wrote = WriteFile(config_dir() + "/main.cf", text);
  if (!wrote.ok()) return wrote;
  wrote = WriteFile(config_dir() + "/master.cf", MasterCf(smtp_port_));
  if (!wrote.ok()) return wrote;

  absl::Status sink = sink_.Start(
      {kSmtpSink, "-u", "nobody", "-d", dir_ + "/sink/%Y%m%d%H%M%S.",
       absl::StrCat("127.0.0.1:", sink_port_), "100"},
      dir_ + "/sink.log", dir_ + "/sink.log");
  if (!sink.ok()) return sink;

  absl::Status started = Postfix({"start"});
  if (!started.ok()) return started;
  started_ = true;
  // smtpd is spawned on the first connection; wait for the listener.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    SmtpClient probe;
    if (probe.Connect(smtp_port_, absl::Seconds(5)).ok()) {
      probe.Command("QUIT").IgnoreError();
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "smtpd did not answer on port ", smtp_port_, "; maillog:\n", maillog()));
}

absl::Status PostfixInstance::Reconfigure(
    const std::vector<std::pair<std::string, std::string>>& main_cf) {
  std::vector<std::string> argv = {kPostconf, "-c", config_dir(), "-e"};
  for (const auto& [name, value] : main_cf) {
    argv.push_back(absl::StrCat(name, " = ", value));
  }
  std::string out;
  absl::StatusOr<int> rc = RunCommand(argv, &out);
  if (!rc.ok()) return rc.status();
  if (*rc != 0) return absl::InternalError("postconf -e: " + out);
  // `postfix reload` only signals the master. Until the daemons started
  // under the old main.cf have exited, an idle old smtpd can still accept
  // the next connection and answer it with the old restrictions (seen on a
  // loaded machine: a RCPT answered by the previous adapter). So wait for
  // them; the test closed its connections, so they exit at once.
  const int master = MasterPid();
  std::vector<int> left = ChildrenOf(master);  // the old daemons
  if (absl::Status s = Postfix({"reload"}); !s.ok()) return s;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!left.empty()) {
    left.erase(
        std::remove_if(left.begin(), left.end(),
                       [&](int pid) { return !LiveChildOf(pid, master); }),
        left.end());
    if (left.empty()) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("postfix reload: daemons of the old configuration "
                       "still running after 10 s: ",
                       absl::StrJoin(left, " ")));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::OkStatus();
}

int PostfixInstance::MasterPid() const {
  int pid = 0;
  const std::string text = ReadFile(dir_ + "/queue/pid/master.pid");
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) ? pid : 0;
}

absl::Status PostfixInstance::Stop() {
  absl::Status status = absl::OkStatus();
  if (started_) {
    started_ = false;
    const int master = MasterPid();
    status = Postfix({"stop"});
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (Alive(master) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (Alive(master)) {
      kill(master, SIGKILL);
      status = absl::DeadlineExceededError("postfix master killed");
    }
  }
  if (sink_.pid() > 0 && sink_.running()) sink_.Stop(absl::Seconds(5));
  return status;
}

std::string PostfixInstance::maillog() const {
  return ReadFile(dir_ + "/maillog");
}

std::vector<std::string> PostfixInstance::Deliveries() const {
  std::vector<std::string> out;
  DIR* d = opendir((dir_ + "/sink").c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    out.push_back(ReadFile(dir_ + "/sink/" + e->d_name));
  }
  closedir(d);
  return out;
}

bool PostfixInstance::WaitForDelivery(const std::string& text,
                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    for (const std::string& m : Deliveries()) {
      if (m.find(text) != std::string::npos) return true;
    }
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
}

}  // namespace rcptguard::testing
