// libFuzzer target for the LDIF reader and the attribute mapping: any byte
// string must give records or an InvalidArgument "SOURCE:LINE: reason",
// never a crash, a hang, or unbounded memory.
//
// Built by tests/fuzz/CMakeLists.txt with -DRG_FUZZ=ON, or by hand (from
// the repository root):
//   SRCS="tests/fuzz/ldif_fuzz.cc server/ldif/ldif.cc
//         server/ldif/mapping.cc common/file.cc"
//   LIBS="absl_status absl_statusor absl_strings absl_raw_hash_set absl_hash"
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address -I. $SRCS
//       $(pkg-config --libs $LIBS) -o ldif_fuzz    # one line
//   mkdir -p /tmp/ldif_corpus
//   ./ldif_fuzz /tmp/ldif_corpus tests/fuzz/corpus/ldif -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "server/ldif/ldif.h"
#include "server/ldif/mapping.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rcptguard::ldif;
  const std::string text(reinterpret_cast<const char*>(data), size);

  // The reader alone: check its promises on every record.
  {
    std::istringstream in(text);
    LdifReader reader(&in, "fuzz");
    int last_line = 0;
    while (true) {
      absl::StatusOr<std::optional<LdifRecord>> next = reader.Next();
      if (!next.ok()) {
        Check(next.status().code() == absl::StatusCode::kInvalidArgument);
        Check(absl::StartsWith(next.status().message(), "fuzz:"));
        // Errors are sticky.
        Check(reader.Next().status() == next.status());
        break;
      }
      if (!next->has_value()) {
        Check(reader.Next().ok());
        break;
      }
      const LdifRecord& record = **next;
      Check(record.line > last_line);
      last_line = record.line;
      Check(record.attributes.size() <= kMaxLdifRecordValues);
      for (const LdifAttribute& a : record.attributes) {
        Check(!a.name.empty());
        Check(a.name != "dn" && a.name != "changetype");
        Check(a.value.size() <= kMaxLdifLineBytes);
        Check(IsValidAttributeDescription(a.name + a.options));
      }
    }
  }

  // Through both presets.
  for (Preset preset : {Preset::kActiveDirectory, Preset::kOpenLdap}) {
    std::istringstream in(text);
    uint64_t sunk = 0;
    absl::StatusOr<LdifLoadStats> stats =
        LoadLdif(&in, "fuzz", AttributeMapping::ForPreset(preset),
                 [&](std::string_view address) {
                   Check(!address.empty());
                   ++sunk;
                 });
    if (stats.ok()) {
      Check(stats->addresses == sunk);
      Check(stats->records == stats->included + stats->no_addresses +
                                  stats->wrong_object_class + stats->disabled);
    }
  }
  return 0;
}
