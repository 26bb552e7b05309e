// Lets command lines spell flags with dashes (--client-ip) as well as with
// Abseil's underscores (--client_ip): rewrites the flag names in argv in
// place, before absl::ParseCommandLine. Values are never touched, nor is
// anything after a bare "--".
//
// Thread safety: call once from main() before other threads start.
#ifndef RCPTGUARD_COMMON_FLAG_SPELLING_H_
#define RCPTGUARD_COMMON_FLAG_SPELLING_H_

#include <string_view>

namespace rcptguard {

inline void AcceptDashedFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (std::string_view(arg) == "--") break;
    if (arg[0] != '-' || arg[1] != '-') continue;
    for (char* p = arg + 2; *p != '\0' && *p != '='; ++p) {
      if (*p == '-') *p = '_';
    }
  }
}

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_FLAG_SPELLING_H_
