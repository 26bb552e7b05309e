// rcptguardd: composition root only. Flags bootstrap; everything else is the
// text-format config (see deploy/examples/rcptguard.textproto).
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/flag_spelling.h"
#include "common/log.h"
#include "common/program.h"
#include "server/config/config.h"
#include "server/config/config_files.h"
#include "server/service/server.h"
#include "systemd/sd-daemon.h"

ABSL_FLAG(std::string, config, "", "Path of the text-format ServerConfig.");
ABSL_FLAG(std::string, listen, "",
          "Override listen_address (host:port; port 0 picks a free port).");
ABSL_FLAG(std::string, port_file, "",
          "Write the bound gRPC port to this file once listening (tests).");
ABSL_FLAG(std::string, metrics_listen, "",
          "Override metrics.listen_address (host:port; port 0 picks one).");
ABSL_FLAG(std::string, metrics_port_file, "",
          "Write the bound metrics port to this file once listening (tests).");
ABSL_FLAG(std::string, health_port_file, "",
          "Write the bound health-only port (health_listen_address; port 0 "
          "picks one) to this file once listening (tests).");
ABSL_FLAG(bool, log_json, false, "Log JSON objects instead of key=value.");
ABSL_FLAG(bool, check_config, false,
          "Validate the config and the files it names (key, LDIF, snapshot, "
          "TLS) and exit: 0 when valid, 2 naming the field otherwise.");
ABSL_FLAG(bool, check_files, true,
          "With --check_config: also check that the files the config names "
          "exist and are readable; --nocheck_files checks the config alone "
          "(e.g. on a machine other than the server). A start always checks "
          "them.");

namespace {

constexpr char kUsage[] =
    "usage: rcptguardd --config=FILE [--listen=HOST:PORT] [--check_config]\n"
    "Recipient validation service for mail edges (rcptguard).\n\n"
    "FILE is a text-format rcptguard.v1.ServerConfig "
    "(proto/rcptguard/v1/config.proto;\n"
    "example: /usr/share/doc/rcptguard/examples/rcptguard.textproto).\n"
    "Signals: SIGHUP reloads the directory; SIGTERM drains and stops.\n"
    "Under systemd (Type=notify) READY=1 is sent once the first directory\n"
    "is loaded and served.\n"
    "Exit status: 0 after a clean stop or a valid --check_config; 1 the\n"
    "first directory could not be loaded; 2 an invalid configuration, a\n"
    "file it names is missing or unreadable, or the server cannot start.\n";

int Fail(const char* what, const absl::Status& status) {
  std::fprintf(
      stderr, "%srcptguardd: %s: %s\n",
      std::string(rcptguard::SyslogPrefix(rcptguard::LogLevel::kError)).c_str(),
      what, std::string(status.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  rcptguard::InitCommandLine("rcptguardd", kUsage, {"server/main.cc"});
  rcptguard::AcceptDashedFlagNames(argc, argv);
  if (int rc = rcptguard::HandleHelpAndVersion(argc, argv); rc >= 0) return rc;
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built with mutex deadlock detection on, which costs
  // about a fifth of the harvest detector's hot path; our lock order is
  // checked by clang's -Wthread-safety and the sanitizer builds instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  rcptguard::SetLogJson(absl::GetFlag(FLAGS_log_json));

  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) {
    std::fprintf(stderr, "rcptguardd: --config is required\n%s", kUsage);
    return 2;
  }
  auto config = rcptguard::service::LoadConfig(config_path);
  if (!config.ok()) return Fail("invalid configuration", config.status());
  if (!absl::GetFlag(FLAGS_listen).empty()) {
    config->set_listen_address(absl::GetFlag(FLAGS_listen));
  }
  if (!absl::GetFlag(FLAGS_metrics_listen).empty()) {
    config->mutable_metrics()->set_listen_address(
        absl::GetFlag(FLAGS_metrics_listen));
  }
  // The overrides may make a plaintext config listen beyond loopback.
  if (absl::Status valid = rcptguard::service::ValidateConfig(*config);
      !valid.ok()) {
    return Fail("invalid configuration", valid);
  }
  // The same file checks for --check_config as for a start.
  const bool check_files =
      !absl::GetFlag(FLAGS_check_config) || absl::GetFlag(FLAGS_check_files);
  if (absl::Status files = check_files
                               ? rcptguard::service::CheckConfigFiles(*config)
                               : absl::OkStatus();
      !files.ok()) {
    return Fail(absl::StrCat("invalid configuration: ", config_path).c_str(),
                files);
  }
  if (absl::GetFlag(FLAGS_check_config)) {
    std::printf("configuration %s is valid\n", config_path.c_str());
    return 0;
  }

  // Block the shutdown signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = rcptguard::service::Server::Create(*std::move(config));
  if (!server.ok()) return Fail("cannot start", server.status());
  absl::Status started = (*server)->Start();
  if (!started.ok()) return Fail("cannot start", started);

  // Port files are written whole and renamed into place, the gRPC port's
  // last, so a test that sees it can read the others. A port not listened
  // on (no health_listen_address) gets no file.
  for (const auto& [path, port] :
       {std::pair{absl::GetFlag(FLAGS_metrics_port_file),
                  (*server)->metrics_port()},
        std::pair{absl::GetFlag(FLAGS_health_port_file),
                  (*server)->health_port()},
        std::pair{absl::GetFlag(FLAGS_port_file), (*server)->port()}}) {
    if (path.empty() || port == 0) continue;
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), path.c_str());
  }

  std::thread signal_thread([&server, &signals] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        rcptguard::LogInfo("sighup", {{"action", "reload"}});
        (*server)->Reload("sighup");
        continue;
      }
      rcptguard::LogInfo("signal",
                         {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      sd_notify(0, "STOPPING=1");
      (*server)->Shutdown();
      return;
    }
  });

  absl::Status loaded = (*server)->LoadDirectory();
  if (!loaded.ok()) {
    std::fprintf(
        stderr, "%srcptguardd: cannot load the directory: %s\n",
        std::string(rcptguard::SyslogPrefix(rcptguard::LogLevel::kError))
            .c_str(),
        std::string(loaded.message()).c_str());
    std::_Exit(1);
  }
  // systemd's Type=notify: `systemctl start` returns once a directory is
  // loaded and served. A no-op without $NOTIFY_SOCKET.
  sd_notify(0, "READY=1\nSTATUS=serving");
  (*server)->Wait();
  signal_thread.join();
  return 0;
}
