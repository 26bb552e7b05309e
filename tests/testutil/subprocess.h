// Starting and stopping real binaries in tests (rcptguardd, slapd, ...).
//
// A Subprocess is started with an argv and optional stdout/stderr files, and
// is stopped by its PID only (never by name). The destructor sends SIGKILL
// to a process still running, so a failing test leaves nothing behind.
//
// Thread safety: not thread-safe; one owner.
#ifndef RCPTGUARD_TESTS_TESTUTIL_SUBPROCESS_H_
#define RCPTGUARD_TESTS_TESTUTIL_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rcptguard::testing {

class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  // Starts argv[0] (a path) with argv. Output goes to the given files
  // (created/truncated), or is inherited when empty.
  absl::Status Start(const std::vector<std::string>& argv,
                     const std::string& stdout_path = "",
                     const std::string& stderr_path = "");

  pid_t pid() const { return pid_; }
  bool running();

  // Sends `sig` to the process.
  void Signal(int sig);
  // SIGSTOP, then waits (up to `timeout`) until every thread of the process
  // is stopped: kill() returns before that, and on a loaded machine a
  // thread already running can still answer a request meanwhile (the group
  // stop reaches the other threads only once the thread picked for the
  // signal is scheduled). Returns false on timeout or if not running.
  bool Freeze(absl::Duration timeout = absl::Seconds(10));
  // Waits up to `timeout` for the process to exit; returns its exit status
  // as from waitpid (use WIFEXITED etc.), or nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout);
  // SIGTERM, wait up to `timeout`, then SIGKILL.
  std::optional<int> Stop(absl::Duration timeout = absl::Seconds(10));

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// Runs argv to completion (bounded by timeout); returns the exit status and
// fills `output` with stdout+stderr.
absl::StatusOr<int> RunCommand(const std::vector<std::string>& argv,
                               std::string* output,
                               absl::Duration timeout = absl::Seconds(60));

// A wait status as one number: the exit code, or -signal when the process
// was killed by a signal (-1000 otherwise).
int ExitCode(int wait_status);

// Reads a whole file ("" if missing).
std::string ReadFile(const std::string& path);
// What a /proc stat file (/proc/<pid>/stat, or a task's) says after the
// ")" that ends the command name: the state letter and the parent's PID;
// zeros when it is gone or unreadable.
struct ProcStat {
  char state = 0;
  int ppid = 0;
};
ProcStat ReadProcStat(const std::string& stat_file);
// Writes a whole file.
absl::Status WriteFile(const std::string& path, const std::string& content);
// A fresh temporary directory under $TMPDIR (or /tmp). Removed when the
// process exits if every test in it passed (kept after a failure, a crash,
// or with RG_KEEP_TEST_DIRS set).
std::string MakeTempDir(const std::string& prefix);
// Removes a directory tree, ignoring errors; kept when RG_KEEP_TEST_DIRS is
// set (to read logs after a failure).
void RemoveTestDir(const std::string& dir);

// A MakeTempDir() folder removed (RemoveTestDir) when the object goes.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& prefix)
      : path_(MakeTempDir(prefix)) {}
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir() { RemoveTestDir(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};
// Waits until `path` exists and is non-empty, up to `timeout`.
bool WaitForFile(const std::string& path, absl::Duration timeout);
// Repo source and build roots (RG_SOURCE_DIR / RG_BINARY_DIR set by ctest).
std::string SourceDir();
std::string BinaryDir();

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_TESTUTIL_SUBPROCESS_H_
