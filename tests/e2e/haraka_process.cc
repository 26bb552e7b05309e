#include "tests/e2e/haraka_process.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testutil/postfix.h"
#include "tests/testutil/slapd.h"

namespace rcptguard::testing {

absl::StatusOr<std::string> HarakaProcess::InstallDir() {
  static const absl::StatusOr<std::string>* const dir = [] {
    std::string output;
    // An own folder under the build tree unless RG_HARAKA_DIR says where.
    const char* env = std::getenv("RG_HARAKA_DIR");
    const std::string target =
        env != nullptr && *env != '\0' ? env : BinaryDir() + "/haraka-env";
    absl::StatusOr<int> rc = RunCommand(
        {"/bin/bash", SourceDir() + "/scripts/haraka_env.sh", target}, &output,
        absl::Minutes(5));
    if (!rc.ok()) return new absl::StatusOr<std::string>(rc.status());
    if (*rc != 0) {
      return new absl::StatusOr<std::string>(absl::UnavailableError(
          absl::StrCat("scripts/haraka_env.sh failed: ", output)));
    }
    return new absl::StatusOr<std::string>(target);
  }();
  return *dir;
}

HarakaProcess::~HarakaProcess() {
  Stop().IgnoreError();
  if (!dir_.empty()) RemoveTestDir(dir_);
}

absl::Status HarakaProcess::Stop() {
  if (process_.pid() > 0 && process_.running()) {
    process_.Stop(absl::Seconds(5));
  }
  return absl::OkStatus();
}

std::string HarakaProcess::log() const {
  return ReadFile(dir_ + "/haraka.log");
}

absl::Status HarakaProcess::Start(
    const std::vector<std::string>& plugins,
    const std::vector<std::pair<std::string, std::string>>& rcptguard_main,
    const std::vector<std::pair<std::string, std::string>>& extra_files) {
  absl::StatusOr<std::string> install = InstallDir();
  if (!install.ok()) return install.status();
  const std::string haraka = *install + "/node_modules/Haraka/bin/haraka";
  dir_ = MakeTempDir("haraka");
  std::string output;
  // The skeleton (connection.ini and friends), then our settings on top.
  absl::StatusOr<int> rc =
      RunCommand({"/usr/bin/env", "node", haraka, "-i", dir_ + "/inst"},
                 &output, absl::Seconds(60));
  if (!rc.ok()) return rc.status();
  if (*rc != 0) return absl::InternalError("haraka -i: " + output);
  const std::string config = dir_ + "/inst/config";
  absl::StatusOr<int> port = PickFreeLoopbackPort();
  if (!port.ok()) return port.status();
  smtp_port_ = *port;
  std::string plugin_list;
  for (const std::string& p : plugins) absl::StrAppend(&plugin_list, p, "\n");
  std::string ini = "[main]\n";
  for (const auto& [k, v] : rcptguard_main)
    absl::StrAppend(&ini, k, "=", v, "\n");
  std::vector<std::pair<std::string, std::string>> files = {
      {"smtp.ini",
       absl::StrCat("listen=127.0.0.1:", smtp_port_, "\nnodes=\n[main]\n")},
      {"plugins", plugin_list},
      {"rcptguard.ini", ini},
      {"log.ini", "[main]\nlevel=info\ntimestamps=true\n"},
      {"me", "haraka.test\n"},
  };
  files.insert(files.end(), extra_files.begin(), extra_files.end());
  for (const auto& [name, content] : files) {
    if (absl::Status s = WriteFile(config + "/" + name, content); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s =
          process_.Start({"/usr/bin/env", "YES_REALLY_DO_DISCARD=1", "node",
                          haraka, "-c", dir_ + "/inst"},
                         dir_ + "/haraka.log", dir_ + "/haraka.log");
      !s.ok()) {
    return s;
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (!process_.running()) {
      return absl::InternalError("haraka exited: " + log());
    }
    SmtpClient probe;
    if (probe.Connect(smtp_port_, absl::Seconds(2)).ok()) {
      probe.Command("QUIT").IgnoreError();
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError("haraka did not greet within 30 s: " +
                                     log());
}

}  // namespace rcptguard::testing
