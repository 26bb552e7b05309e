#include "common/program.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/strings.h"
#include "common/version.h"

namespace rcptguard {
namespace {

struct ProgramState {
  std::string program;
  std::string usage;
  std::vector<std::string> sources;
};

ProgramState& State() {
  static auto* state = new ProgramState();
  return *state;
}

bool FromSources(const std::vector<std::string>& sources,
                 std::string_view filename) {
  for (const std::string& s : sources) {
    if (filename.find(s) != std::string_view::npos) return true;
  }
  return false;
}

// Appends `text` wrapped at about 78 columns, each line indented by
// `indent` spaces.
void AppendWrapped(std::string& out, std::string_view text, size_t indent) {
  size_t column = 0;
  for (absl::string_view word :
       absl::StrSplit(ToAbsl(text), ' ', absl::SkipEmpty())) {
    if (column > 0 && column + 1 + word.size() > 78) {
      out += '\n';
      column = 0;
    }
    if (column == 0) {
      out.append(indent, ' ');
      column = indent;
    } else {
      out += ' ';
      ++column;
    }
    out.append(word.data(), word.size());
    column += word.size();
  }
  if (column > 0) out += '\n';
}

std::string NormalizedName(std::string_view arg) {
  while (!arg.empty() && arg.front() == '-') arg.remove_prefix(1);
  arg = arg.substr(0, arg.find('='));
  std::string name(arg);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

}  // namespace

std::string_view ProjectVersion() { return RCPTGUARD_PROJECT_VERSION; }

std::string VersionLine(std::string_view program) {
  return absl::StrCat(ToAbsl(program), " ", RCPTGUARD_PROJECT_VERSION, " (",
                      RCPTGUARD_BUILD_TYPE, " build)");
}

std::vector<std::string> FlagsDefinedIn(
    const std::vector<std::string>& sources) {
  std::vector<std::string> names;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (FromSources(sources, flag->Filename())) {
      names.emplace_back(name.data(), name.size());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string DescribeFlags(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    std::string def = flag->DefaultValue();
    if (def.empty()) def = "\"\"";
    absl::StrAppend(&out, "  --", name, "=", def, "\n");
    AppendWrapped(out, flag->Help(), 6);
  }
  return out;
}

std::string WrapText(std::string_view text, size_t indent) {
  std::string out;
  for (absl::string_view paragraph : absl::StrSplit(ToAbsl(text), '\n')) {
    if (paragraph.empty()) {
      out += '\n';
      continue;
    }
    AppendWrapped(out, ToStd(paragraph), indent);
  }
  // StrSplit yields an empty last piece after a final newline.
  if (!out.empty() && !text.empty() && text.back() == '\n') out.pop_back();
  return out;
}

HelpRequest FindHelpRequest(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "-h" || arg == "-?") return HelpRequest::kHelp;
    if (arg.empty() || arg[0] != '-') continue;
    const std::string name = NormalizedName(arg);
    if (name == "help" || name == "helpshort") return HelpRequest::kHelp;
    if (name == "helpfull") return HelpRequest::kHelpFull;
    if (name == "version") return HelpRequest::kVersion;
  }
  return HelpRequest::kNone;
}

CommandLine ScanCommandLine(int argc, char** argv) {
  CommandLine out;
  bool rest_positional = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (rest_positional || arg.size() < 2 || arg[0] != '-') {
      out.positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      rest_positional = true;
      continue;
    }
    std::string name = NormalizedName(arg);
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && name.rfind("no", 0) == 0) {
      const absl::CommandLineFlag* negated =
          absl::FindCommandLineFlag(name.substr(2));
      if (negated != nullptr && negated->IsOfType<bool>()) {
        name = name.substr(2);
        flag = negated;
      }
    }
    // Abseil takes "--flag VALUE" for a flag that is not boolean.
    if (flag != nullptr && !flag->IsOfType<bool>() &&
        arg.find('=') == std::string_view::npos && i + 1 < argc) {
      ++i;
    }
    out.flags.push_back(std::move(name));
  }
  return out;
}

void InitCommandLine(std::string_view program, std::string_view usage,
                     std::vector<std::string> sources) {
  ProgramState& state = State();
  state.program = std::string(program);
  state.usage = std::string(usage);
  state.sources = std::move(sources);
  absl::SetProgramUsageMessage(ToAbsl(state.usage));
  absl::FlagsUsageConfig config;
  auto ours = [](absl::string_view filename) {
    return FromSources(State().sources, ToStd(filename));
  };
  config.contains_helpshort_flags = ours;
  config.contains_help_flags = ours;
  config.contains_helppackage_flags = ours;
  config.version_string = [] { return VersionLine(State().program) + "\n"; };
  config.normalize_filename = [](absl::string_view f) {
    while (absl::ConsumePrefix(&f, "../")) {
    }
    return std::string(f);
  };
  absl::SetFlagsUsageConfig(config);
}

int HandleHelpAndVersion(int argc, char** argv) {
  const ProgramState& state = State();
  const HelpRequest request = FindHelpRequest(argc, argv);
  switch (request) {
    case HelpRequest::kNone:
      return -1;
    case HelpRequest::kVersion:
      std::printf("%s\n", VersionLine(state.program).c_str());
      return 0;
    case HelpRequest::kHelp:
    case HelpRequest::kHelpFull: {
      std::string text = state.usage;
      absl::StrAppend(&text, "\nflags:\n",
                      DescribeFlags(FlagsDefinedIn(state.sources)));
      if (request == HelpRequest::kHelpFull) {
        std::vector<std::string> others;
        for (const auto& [name, flag] : absl::GetAllFlags()) {
          if (!FromSources(state.sources, flag->Filename())) {
            others.emplace_back(name.data(), name.size());
          }
        }
        std::sort(others.begin(), others.end());
        absl::StrAppend(&text, "\nflags of the libraries:\n",
                        DescribeFlags(others));
      } else {
        absl::StrAppend(&text, "\n--helpfull also lists the flags of the ",
                        "libraries; --version prints the version.\n");
      }
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
  }
  return -1;
}

}  // namespace rcptguard
