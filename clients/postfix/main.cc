// rcptguard-postfix: Postfix policy delegation and socketmap adapter for
// rcptguard. Composition root only: flags (and an optional key=value config
// file), the client, the metrics endpoint, the adapter, signals.
//
// Configuration is flags, not a text-format proto: the adapter has a dozen
// scalar settings and no nested structure, and its config must not depend
// on the server's schema. `--config=FILE` reads `name = value` lines whose
// names are the flag names; flags given on the command line win over the
// file. A bad value names where it was set: FILE:LINE for the config file,
// --name for the command line. `--check_config` validates everything
// (values, listen addresses, the TLS files exist and are readable) and
// exits 0 without starting. See docs/postfix.md and rcptguard-postfix(8).
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "clients/postfix/adapter.h"
#include "common/exposition/http_endpoint.h"
#include "common/exposition/process_collector.h"
#include "common/file.h"
#include "common/flag_spelling.h"
#include "common/log.h"
#include "common/program.h"
#include "common/strings.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

ABSL_FLAG(std::string, config, "",
          "Optional file of `flag_name = value` lines (# comments); command "
          "line flags win over it.");
ABSL_FLAG(std::string, server, "127.0.0.1:50051",
          "rcptguard gRPC target (host:port, unix:/path, dns:///name:port).");
ABSL_FLAG(std::string, policy_listen, "inet:127.0.0.1:9998",
          "Policy delegation listener, inet:HOST:PORT or unix:/PATH; empty: "
          "off.");
ABSL_FLAG(std::string, socketmap_listen, "",
          "Socketmap listener, inet:HOST:PORT or unix:/PATH; empty: off.");
ABSL_FLAG(std::string, socketmap_name, "rcpt",
          "Map name Postfix uses: socketmap:inet:HOST:PORT:NAME.");
ABSL_FLAG(std::string, unix_socket_mode, "0660",
          "Octal permissions of unix listeners (owner and group: run with "
          "the group Postfix's smtpd has, or use a folder only it reaches).");
ABSL_FLAG(std::string, failure_policy, "fail_open",
          "When rcptguard does not answer in time: fail_open (policy DUNNO, "
          "socketmap OK) or tempfail (policy 451 4.3.0, socketmap TEMP).");
ABSL_FLAG(absl::Duration, deadline, absl::Milliseconds(500),
          "Deadline of each call to rcptguard.");
ABSL_FLAG(absl::Duration, batch_window, absl::Microseconds(500),
          "Socketmap lookups arriving within this window are sent in one "
          "Validate (0: off). Policy lookups are never merged.");
ABSL_FLAG(int, max_batch, 64, "Most recipients in one merged Validate.");
ABSL_FLAG(std::string, transport, "batch_stream",
          "How lookups travel to rcptguard: batch_stream (one long-lived "
          "ValidateBatchStream, lookups of all sessions grouped while one "
          "message is in flight), stream (ValidateStream) or unary.");
ABSL_FLAG(bool, tls, false, "Use TLS to rcptguard.");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA file (TLS); empty: system roots.");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mTLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM client key (mTLS).");
ABSL_FLAG(std::string, tls_server_name, "",
          "Expected name in the server certificate, if not the target host.");
ABSL_FLAG(std::string, edge_id, "",
          "SmtpContext.edge_id; empty: postfix/<server_address>.");
ABSL_FLAG(int, max_connections, 10000, "Most open Postfix connections.");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(600),
          "Close connections idle this long.");
ABSL_FLAG(absl::Duration, max_tarpit_delay, absl::Seconds(60),
          "Cap on TARPIT delays; keep below smtpd_policy_service_timeout.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "After SIGTERM, time for requests in flight to be answered.");
ABSL_FLAG(int, max_line, 2048, "Longest policy attribute line (bytes).");
ABSL_FLAG(int, max_attributes, 100, "Most attributes in a policy request.");
ABSL_FLAG(int, max_request_bytes, 32768,
          "Most bytes of attribute lines in one policy request.");
ABSL_FLAG(int, max_netstring, 100000, "Longest socketmap netstring payload.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9465",
          "Prometheus /metrics address (HOST:PORT, port 0 picks one); "
          "loopback by default, 0.0.0.0:9465 to be scraped from other hosts; "
          "empty: off.");
ABSL_FLAG(std::string, port_file, "",
          "Write `policy=P`, `socketmap=P`, `metrics=P` lines here once "
          "listening (tests).");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");
ABSL_FLAG(bool, log_json, false, "Log JSON objects instead of key=value.");
ABSL_FLAG(bool, check_config, false,
          "Validate the settings (config file and flags) and the TLS files, "
          "then exit: 0 when valid, 2 naming FILE:LINE or --flag otherwise.");

namespace {

using rcptguard::LogError;
using rcptguard::LogInfo;

constexpr char kUsage[] =
    "usage: rcptguard-postfix [--config=FILE] [--server=HOST:PORT]\n"
    "           [--policy_listen=inet:127.0.0.1:9998] "
    "[--socketmap_listen=unix:/PATH] [--check_config]\n"
    "Postfix policy delegation (check_policy_service) and socketmap adapter\n"
    "for rcptguard. FILE holds `flag_name = value` lines (# comments); flags\n"
    "on the command line win over it. See docs/postfix.md.\n"
    "Exit status: 0 after a clean stop or a valid --check_config; 1 the\n"
    "adapter failed while running; 2 an invalid setting (named with\n"
    "FILE:LINE or --flag) or it cannot start.\n";

int Fail(std::string_view what, const absl::Status& status) {
  std::fprintf(
      stderr, "%srcptguard-postfix: %.*s: %s\n",
      std::string(rcptguard::SyslogPrefix(rcptguard::LogLevel::kError)).c_str(),
      static_cast<int>(what.size()), what.data(),
      std::string(status.message()).c_str());
  return 2;
}

// Where each setting from the config file was set ("FILE:LINE"), unless
// the command line set it again.
absl::flat_hash_map<std::string, std::string>& Origins() {
  static auto* origins = new absl::flat_hash_map<std::string, std::string>();
  return *origins;
}

// "FILE:LINE: option" or "--option": where a bad value came from.
std::string Where(std::string_view option) {
  auto it = Origins().find(rcptguard::ToAbsl(option));
  if (it != Origins().end()) {
    return absl::StrCat(it->second, ": ", rcptguard::ToAbsl(option));
  }
  return absl::StrCat("--", rcptguard::ToAbsl(option));
}

int FailOption(std::string_view option, const absl::Status& status) {
  return Fail(Where(option), status);
}

// `status` is "OPTION: reason" (ValidateAdapterOptions): name where OPTION
// was set.
int FailValidation(const absl::Status& status) {
  const std::string message(status.message());
  const size_t colon = message.find(": ");
  if (colon != std::string::npos &&
      absl::FindCommandLineFlag(message.substr(0, colon)) != nullptr) {
    return FailOption(message.substr(0, colon),
                      absl::InvalidArgumentError(message.substr(colon + 2)));
  }
  return Fail("invalid settings", status);
}

// The --config value from argv, before absl parses anything.
std::string FindConfigArg(int argc, char** argv) {
  std::string found;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    for (std::string_view prefix : {"--config=", "-config="}) {
      if (a.rfind(prefix, 0) == 0) found = std::string(a.substr(prefix.size()));
    }
    if ((a == "--config" || a == "-config") && i + 1 < argc) {
      found = argv[i + 1];
    }
  }
  return found;
}

// Applies `name = value` lines. Names are flag names; `config` itself and
// unknown names are errors, with the line number.
absl::Status ApplyConfigFile(const std::string& path) {
  // Never blocks on a FIFO, never reads /dev/zero without end.
  absl::StatusOr<std::string> text = rcptguard::ReadRegularFile(
      "config file", path, rcptguard::kMaxConfigFileBytes);
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  if (!text.ok()) return text.status();
  std::istringstream in(*text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') continue;
    const size_t eq = l.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": expected name = value"));
    }
    const absl::string_view name = absl::StripAsciiWhitespace(l.substr(0, eq));
    const absl::string_view value =
        absl::StripAsciiWhitespace(l.substr(eq + 1));
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr || name == "config") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": unknown setting \"", name, "\""));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": ", name, ": ", error));
    }
    Origins()[std::string(name)] = absl::StrCat(path, ":", n);
  }
  return absl::OkStatus();
}

void RaiseFileLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  rcptguard::InitCommandLine("rcptguard-postfix", kUsage,
                             {"clients/postfix/main.cc"});
  rcptguard::AcceptDashedFlagNames(argc, argv);
  if (int rc = rcptguard::HandleHelpAndVersion(argc, argv); rc >= 0) return rc;
  const std::string config_file = FindConfigArg(argc, argv);
  if (!config_file.empty()) {
    absl::Status applied = ApplyConfigFile(config_file);
    if (!applied.ok()) return Fail("config", applied);
  }
  // The command line wins over the file: its flags are not the file's.
  for (const std::string& flag : rcptguard::ScanCommandLine(argc, argv).flags) {
    Origins().erase(flag);
  }
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  rcptguard::SetLogJson(absl::GetFlag(FLAGS_log_json));
  {
    const std::string level = absl::GetFlag(FLAGS_log_level);
    if (level == "debug") {
      rcptguard::SetMinLogLevel(rcptguard::LogLevel::kDebug);
    } else if (level == "warning") {
      rcptguard::SetMinLogLevel(rcptguard::LogLevel::kWarning);
    } else if (level == "error") {
      rcptguard::SetMinLogLevel(rcptguard::LogLevel::kError);
    } else if (level != "info") {
      return FailOption(
          "log_level",
          absl::InvalidArgumentError(absl::StrCat(
              "\"", level, "\": expected debug, info, warning or error")));
    }
  }

  namespace client = rcptguard::client;
  namespace postfix = rcptguard::postfix;
  namespace exposition = rcptguard::exposition;
  client::ClientOptions copts;
  copts.target = absl::GetFlag(FLAGS_server);
  copts.deadline = absl::GetFlag(FLAGS_deadline);
  copts.batch_window = absl::GetFlag(FLAGS_batch_window);
  copts.max_batch = absl::GetFlag(FLAGS_max_batch);
  copts.tls.enabled = absl::GetFlag(FLAGS_tls);
  copts.tls.ca_file = absl::GetFlag(FLAGS_tls_ca);
  copts.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  copts.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  copts.tls.server_name_override = absl::GetFlag(FLAGS_tls_server_name);
  copts.edge_id = absl::GetFlag(FLAGS_edge_id);
  absl::StatusOr<client::Transport> transport =
      client::ParseTransport(absl::GetFlag(FLAGS_transport));
  if (!transport.ok()) return Fail("transport", transport.status());
  copts.transport = *transport;
  absl::StatusOr<client::FailurePolicy> policy =
      client::ParseFailurePolicy(absl::GetFlag(FLAGS_failure_policy));
  if (!policy.ok()) return FailOption("failure_policy", policy.status());
  copts.failure_policy = *policy;

  postfix::AdapterOptions aopts;
  aopts.policy_listen = absl::GetFlag(FLAGS_policy_listen);
  aopts.socketmap_listen = absl::GetFlag(FLAGS_socketmap_listen);
  aopts.socketmap_name = absl::GetFlag(FLAGS_socketmap_name);
  const std::string mode_text = absl::GetFlag(FLAGS_unix_socket_mode);
  char* mode_end = nullptr;
  const long mode = std::strtol(mode_text.c_str(), &mode_end, 8);
  if (mode_text.empty() || *mode_end != '\0' || mode < 0 || mode > 0777) {
    return FailOption("unix_socket_mode",
                      absl::InvalidArgumentError(absl::StrCat(
                          "\"", mode_text, "\": expected an octal mode")));
  }
  aopts.unix_socket_mode = static_cast<int>(mode);
  aopts.edge_id = absl::GetFlag(FLAGS_edge_id);
  aopts.max_connections =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_max_connections)));
  aopts.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  aopts.max_tarpit_delay = absl::GetFlag(FLAGS_max_tarpit_delay);
  aopts.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  aopts.policy_limits.max_line =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_max_line)));
  aopts.policy_limits.max_attributes =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_max_attributes)));
  aopts.policy_limits.max_request_bytes =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_max_request_bytes)));
  aopts.max_netstring =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_max_netstring)));
  if (absl::Status s = postfix::ValidateAdapterOptions(aopts); !s.ok()) {
    return FailValidation(s);
  }
  for (const auto& [option, path] :
       {std::pair<const char*, std::string>{"tls_ca", copts.tls.ca_file},
        {"tls_cert", copts.tls.cert_file},
        {"tls_key", copts.tls.key_file}}) {
    if (path.empty()) continue;
    absl::StatusOr<rcptguard::OpenedFile> opened =
        rcptguard::OpenRegularFile(option, path, rcptguard::kMaxPemFileBytes);
    if (!opened.ok()) return FailOption(option, opened.status());
  }
  if (absl::GetFlag(FLAGS_check_config)) {
    std::printf("configuration %s is valid\n",
                config_file.empty() ? "(flags only)" : config_file.c_str());
    return 0;
  }

  RaiseFileLimit();
  // Block the shutdown signals in every thread (gRPC's included); one
  // thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<client::Client>> rg =
      client::Client::Create(copts);
  if (!rg.ok()) return Fail("client", rg.status());

  auto registry = std::make_shared<prometheus::Registry>();
  try {
    prometheus::BuildGauge()
        .Name("rcptguard_postfix_build_info")
        .Help("rcptguard-postfix build; value 1, its version as label.")
        .Register(*registry)
        .Add({{"version", std::string(rcptguard::ProjectVersion())}})
        .Set(1);
  } catch (const std::exception& e) {
    return Fail("metrics", absl::InternalError(e.what()));
  }
  std::unique_ptr<exposition::HttpEndpoint> metrics_server;
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<exposition::HttpEndpoint>> started =
        exposition::StartHttpEndpoint(
            metrics_listen,
            std::vector<std::shared_ptr<prometheus::Collectable>>{
                registry, std::make_shared<exposition::ProcessCollector>()});
    if (!started.ok()) return FailOption("metrics_listen", started.status());
    metrics_server = *std::move(started);
  }
  const int metrics_port =
      metrics_server != nullptr ? metrics_server->port() : 0;

  absl::StatusOr<std::unique_ptr<postfix::Adapter>> adapter =
      postfix::Adapter::Create(aopts, rg->get(), registry);
  if (!adapter.ok()) return Fail("cannot start", adapter.status());

  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << "policy=" << (*adapter)->policy_port()
                       << "\nsocketmap=" << (*adapter)->socketmap_port()
                       << "\nmetrics=" << metrics_port << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }

  std::atomic<bool> done{false};
  postfix::Adapter* running = adapter->get();
  std::thread signal_thread([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!done.load()) {
      siginfo_t info;
      const int sig = sigtimedwait(&signals, &info, &tick);
      if (sig == SIGTERM || sig == SIGINT) {
        LogInfo("signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        running->Stop();
      }
    }
  });

  absl::Status ran = (*adapter)->Run();
  done.store(true);
  signal_thread.join();
  adapter->reset();
  rg->reset();  // waits for calls in flight (bounded by --deadline)
  if (!ran.ok()) {
    LogError("postfix_adapter_failed", {{"error", std::string(ran.message())}});
    return 1;
  }
  return 0;
}
