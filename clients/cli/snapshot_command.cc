#include "clients/cli/snapshot_command.h"

#include <cstdio>
#include <string_view>
#include <vector>

#include "clients/cli/snapshot_util.h"

namespace rcptguard::cli {

using internal::kSnapshotUsage;

int RunSnapshotCommand(const std::vector<char*>& args) {
  if (args.size() < 3) {
    std::fprintf(stderr, "%s", kSnapshotUsage);
    return kExitUsage;
  }
  const std::string_view sub = args[2];
  if (sub == "keygen") return internal::RunKeygen(args);
  if (sub == "build") return internal::RunBuild(args);
  if (sub == "verify") return internal::RunVerify(args);
  if (sub == "inspect") return internal::RunInspect(args);
  std::fprintf(stderr, "rcptguard snapshot: unknown subcommand '%s'\n%s",
               args[2], kSnapshotUsage);
  return kExitUsage;
}

}  // namespace rcptguard::cli
