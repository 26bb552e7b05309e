// A real Haraka (installed from the npm registry by scripts/haraka_env.sh,
// with haraka-plugin-rcptguard packed from clients/haraka) started for a
// test: a private config directory, SMTP on a free 127.0.0.1 port, one
// process (no cluster), stopped by PID when the object goes away.
//
//   HarakaProcess haraka;
//   ASSERT_TRUE(haraka.Start({"rcptguard"}, {{"servers", server.target()}})
//                   .ok());
//   SmtpClient smtp;  smtp.Connect(haraka.smtp_port());
//
// Thread safety: not thread-safe; one owner.
#ifndef RCPTGUARD_TESTS_E2E_HARAKA_PROCESS_H_
#define RCPTGUARD_TESTS_E2E_HARAKA_PROCESS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::testing {

class HarakaProcess {
 public:
  HarakaProcess() = default;
  HarakaProcess(const HarakaProcess&) = delete;
  HarakaProcess& operator=(const HarakaProcess&) = delete;
  ~HarakaProcess();

  // Runs scripts/haraka_env.sh once per process (npm, when the pinned
  // versions or the plugin changed) and returns its directory.
  static absl::StatusOr<std::string> InstallDir();

  // Starts Haraka with `plugins` (config/plugins, in order) and the
  // [main] settings of config/rcptguard.ini given; returns once it answers
  // with a 220 greeting. `extra_files` are (name, content) written into
  // config/ as well (e.g. "rcptguard.timeout").
  absl::Status Start(
      const std::vector<std::string>& plugins,
      const std::vector<std::pair<std::string, std::string>>& rcptguard_main,
      const std::vector<std::pair<std::string, std::string>>& extra_files = {});
  absl::Status Stop();

  int smtp_port() const { return smtp_port_; }
  std::string log() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int smtp_port_ = 0;
  Subprocess process_;
};

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_E2E_HARAKA_PROCESS_H_
