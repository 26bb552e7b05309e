// Bridges between std::string_view and absl::string_view.
//
// Debian's Abseil 20220623 is built with ABSL_OPTION_USE_STD_STRING_VIEW=0,
// so absl::string_view is a distinct type and absl::StrCat, Status::message()
// and friends do not take or give std::string_view. Our APIs use
// std::string_view; convert at the Abseil boundary with these.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_COMMON_STRINGS_H_
#define RCPTGUARD_COMMON_STRINGS_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace rcptguard {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view ToStd(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_STRINGS_H_
