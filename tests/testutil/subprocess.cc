#include "tests/testutil/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace rcptguard::testing {

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_status_.has_value()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

absl::Status Subprocess::Start(const std::vector<std::string>& argv,
                               const std::string& stdout_path,
                               const std::string& stderr_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!stdout_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO,
                                     stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  if (!stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO,
                                     stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Children start with no blocked signals whatever the test runner did.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  int rc = posix_spawn(&pid_, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    pid_ = -1;
    return absl::InternalError(
        absl::StrCat("posix_spawn ", argv[0], ": ", strerror(rc)));
  }
  exit_status_.reset();
  return absl::OkStatus();
}

bool Subprocess::running() {
  if (pid_ <= 0 || exit_status_.has_value()) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = status;
    return false;
  }
  return true;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && !exit_status_.has_value()) ::kill(pid_, sig);
}

ProcStat ReadProcStat(const std::string& stat_file) {
  const std::string stat = ReadFile(stat_file);
  ProcStat out;
  // ") S PPID ..."
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return out;
  out.state = stat[paren + 2];
  const size_t start = paren + 4;
  if (start < stat.size()) {
    const size_t end = stat.find(' ', start);
    if (!absl::SimpleAtoi(
            absl::string_view(stat).substr(
                start, end == std::string::npos ? end : end - start),
            &out.ppid)) {
      out.ppid = 0;
    }
  }
  return out;
}

bool Subprocess::Freeze(absl::Duration timeout) {
  if (pid_ <= 0 || exit_status_.has_value()) return false;
  if (::kill(pid_, SIGSTOP) != 0) return false;
  const std::filesystem::path tasks = absl::StrCat("/proc/", pid_, "/task");
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    bool all_stopped = true;
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
      const char state = ReadProcStat((task.path() / "stat").string()).state;
      // 'T' stopped; a thread that exited meanwhile reads as 0 or 'Z'/'X'.
      if (state != 'T' && state != 0 && state != 'Z' && state != 'X') {
        all_stopped = false;
        break;
      }
    }
    if (error) return false;
    if (all_stopped) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  if (exit_status_.has_value()) return exit_status_;
  if (pid_ <= 0) return std::nullopt;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = status;
      return exit_status_;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return std::nullopt;
}

std::optional<int> Subprocess::Stop(absl::Duration timeout) {
  Signal(SIGTERM);
  std::optional<int> status = Wait(timeout);
  if (!status.has_value()) {
    Signal(SIGKILL);
    status = Wait(absl::Seconds(10));
  }
  return status;
}

absl::StatusOr<int> RunCommand(const std::vector<std::string>& argv,
                               std::string* output, absl::Duration timeout) {
  const std::string dir = MakeTempDir("rg-cmd");
  const std::string out_path = dir + "/output";
  Subprocess p;
  if (absl::Status s = p.Start(argv, out_path, out_path); !s.ok()) return s;
  std::optional<int> status = p.Wait(timeout);
  if (!status.has_value()) {
    p.Signal(SIGKILL);
    p.Wait(absl::Seconds(10));
    return absl::DeadlineExceededError(absl::StrCat(
        argv[0], " did not finish within ", absl::FormatDuration(timeout)));
  }
  if (output != nullptr) *output = ReadFile(out_path);
  ::unlink(out_path.c_str());
  ::rmdir(dir.c_str());
  return *status;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
  return -1000;
}

void RemoveTestDir(const std::string& dir) {
  if (dir.empty() || std::getenv("RG_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

namespace {

// The folders MakeTempDir() made in this process, removed when it exits if
// every test passed (a failed test's logs stay for reading; so does
// everything of a process that crashed or was killed).
absl::Mutex temp_dirs_mu;
std::vector<std::string>* temp_dirs ABSL_GUARDED_BY(temp_dirs_mu) = nullptr;
pid_t temp_dirs_owner ABSL_GUARDED_BY(temp_dirs_mu) = 0;

void RemoveTempDirsAtExit() {
  std::vector<std::string> dirs;
  {
    absl::MutexLock lock(&temp_dirs_mu);
    if (temp_dirs == nullptr || temp_dirs_owner != ::getpid()) return;
    dirs.swap(*temp_dirs);
  }
  if (::testing::UnitTest::GetInstance()->Failed()) return;
  for (const std::string& dir : dirs) RemoveTestDir(dir);
}

}  // namespace

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/",
                                   prefix, "-XXXXXX");
  char* made = ::mkdtemp(templ.data());
  if (made == nullptr) return std::string();
  absl::MutexLock lock(&temp_dirs_mu);
  if (temp_dirs == nullptr) {
    temp_dirs = new std::vector<std::string>();
    temp_dirs_owner = ::getpid();
    std::atexit(RemoveTempDirsAtExit);
  }
  temp_dirs->push_back(made);
  return std::string(made);
}

bool WaitForFile(const std::string& path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

std::string SourceDir() {
  const char* d = std::getenv("RG_SOURCE_DIR");
  return d != nullptr ? d : RG_DEFAULT_SOURCE_DIR;
}
std::string BinaryDir() {
  const char* d = std::getenv("RG_BINARY_DIR");
  return d != nullptr ? d : RG_DEFAULT_BINARY_DIR;
}

}  // namespace rcptguard::testing
