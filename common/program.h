// Command-line conventions shared by rcptguardd, rcptguard and
// rcptguard-postfix: help, version, and which flags were given.
//
//   --help, -h, --helpshort   the program's usage and its own flags; exit 0
//   --helpfull                the same, then every other linked-in flag
//   --version                 "PROGRAM VERSION (BUILD_TYPE build)"; exit 0
//
// Abseil 20220623's own --help lists only flags defined in "<program>.cc"
// (ours live in main.cc) and exits 1; these helpers run before
// absl::ParseCommandLine and answer the request themselves.
// InitCommandLine also points Abseil's usage config (--helpshort,
// --helppackage, --version if reached) at the same flags.
//
//   rcptguard::InitCommandLine("rcptguardd", kUsage, {"server/main.cc"});
//   if (int rc = rcptguard::HandleHelpAndVersion(argc, argv); rc >= 0)
//     return rc;
//
// Thread safety: command-line code; call from main() before other threads
// start.
#ifndef RCPTGUARD_COMMON_PROGRAM_H_
#define RCPTGUARD_COMMON_PROGRAM_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rcptguard {

// The project version, e.g. "0.1.0" (CMake's project VERSION).
std::string_view ProjectVersion();

// "PROGRAM VERSION (BUILD_TYPE build)", e.g.
// "rcptguardd 0.1.0 (RelWithDebInfo build)".
std::string VersionLine(std::string_view program);

// The names of the flags defined in files whose path contains one of
// `sources` (e.g. "server/main.cc", "clients/cli/"), sorted.
std::vector<std::string> FlagsDefinedIn(
    const std::vector<std::string>& sources);

// The listing of `names` as --help prints it, one entry per flag:
//   "  --name=DEFAULT\n      help text, wrapped\n"
// Unknown names are skipped.
std::string DescribeFlags(const std::vector<std::string>& names);

// `text` wrapped at about 78 columns, each line indented by `indent`
// spaces; newlines in `text` end paragraphs.
std::string WrapText(std::string_view text, size_t indent = 0);

// What argv asks for before anything else runs (anything after a bare
// "--" is not looked at).
enum class HelpRequest { kNone, kHelp, kHelpFull, kVersion };
HelpRequest FindHelpRequest(int argc, char** argv);

// The flags given on the command line, by name ("--no<name>" of a boolean
// flag counts as <name>; dashes in names as underscores), in order, and
// the positional arguments (not a flag, nor the value of "--flag VALUE").
struct CommandLine {
  std::vector<std::string> flags;
  std::vector<std::string> positional;
};
CommandLine ScanCommandLine(int argc, char** argv);

// Sets the program usage message and Abseil's usage config (flags of
// `sources`, the version string). `usage` is the text printed first by
// --help; it ends with a newline.
void InitCommandLine(std::string_view program, std::string_view usage,
                     std::vector<std::string> sources);

// Handles --help, --helpfull and --version as above for a program set up
// by InitCommandLine: prints to stdout and returns 0; -1 when none was
// asked for.
int HandleHelpAndVersion(int argc, char** argv);

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_PROGRAM_H_
