// The flags of `rcptguard snapshot ...` (defined in snapshot_flags.cc), and
// the two list types that keep every occurrence of a repeated flag.
// `--json` (inspect) and `--force` (keygen) are the flags of the same names
// defined in main.cc and shared with the other commands.
//
// Thread safety: read the flags after absl::ParseCommandLine, from main's
// thread (the snapshot commands run there).
#ifndef RCPTGUARD_CLIENTS_CLI_SNAPSHOT_FLAGS_H_
#define RCPTGUARD_CLIENTS_CLI_SNAPSHOT_FLAGS_H_

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// Abseil keeps only the last occurrence of a flag. For --base_dn and
// --from_ldif that would silently drop a base or a file given first, and a
// snapshot missing part of the directory: so these two types collect every
// occurrence. Abseil parses each occurrence into a fresh value, hence the
// per-flag accumulator. Parsing happens once, in absl::ParseCommandLine.
namespace rcptguard::cli::internal {

// --from_ldif: files, comma-separated and/or repeated.
struct LdifFileList {
  std::vector<std::string> values;
};
// --base_dn: DNs, ';'-separated and/or repeated (a DN holds commas).
struct BaseDnList {
  std::vector<std::string> values;
};

inline std::vector<std::string> AccumulateList(std::vector<std::string>* seen,
                                               absl::string_view text,
                                               char separator) {
  for (absl::string_view piece :
       absl::StrSplit(text, separator, absl::SkipWhitespace())) {
    seen->emplace_back(absl::StripAsciiWhitespace(piece));
  }
  return *seen;
}

inline bool AbslParseFlag(absl::string_view text, LdifFileList* out,
                          std::string*) {
  static auto* const seen = new std::vector<std::string>();
  out->values = AccumulateList(seen, text, ',');
  return true;
}
inline std::string AbslUnparseFlag(const LdifFileList& list) {
  return absl::StrJoin(list.values, ",");
}
inline bool AbslParseFlag(absl::string_view text, BaseDnList* out,
                          std::string*) {
  static auto* const seen = new std::vector<std::string>();
  out->values = AccumulateList(seen, text, ';');
  return true;
}
inline std::string AbslUnparseFlag(const BaseDnList& list) {
  return absl::StrJoin(list.values, ";");
}

}  // namespace rcptguard::cli::internal

ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(bool, force);

ABSL_DECLARE_FLAG(std::string, out);
ABSL_DECLARE_FLAG(rcptguard::cli::internal::LdifFileList, from_ldif);
ABSL_DECLARE_FLAG(std::string, from_ldap);
ABSL_DECLARE_FLAG(std::string, preset);
ABSL_DECLARE_FLAG(std::string, mapping);
ABSL_DECLARE_FLAG(bool, include_disabled_accounts);
ABSL_DECLARE_FLAG(std::vector<std::string>, domains);
ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, key);
ABSL_DECLARE_FLAG(std::string, snapshot_version);
ABSL_DECLARE_FLAG(std::string, source);
ABSL_DECLARE_FLAG(rcptguard::cli::internal::BaseDnList, base_dn);
ABSL_DECLARE_FLAG(std::string, filter);
ABSL_DECLARE_FLAG(std::string, bind_dn);
ABSL_DECLARE_FLAG(std::string, password_file);
ABSL_DECLARE_FLAG(bool, start_tls);
ABSL_DECLARE_FLAG(std::string, ca_file);
ABSL_DECLARE_FLAG(int, page_size);
ABSL_DECLARE_FLAG(absl::Duration, timeout);

#endif  // RCPTGUARD_CLIENTS_CLI_SNAPSHOT_FLAGS_H_
