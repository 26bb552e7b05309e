// JSON output of the rcptguard CLI (`--json` of check, status, offenders,
// and snapshot inspect), one convention for all of them:
//   * field names as in the .proto (snake_case), every field printed, also
//     at its default value, so scripts always find the keys;
//   * every number is a JSON number, 64-bit counts included (protobuf's
//     JSON mapping prints those as strings; counts stay far below 2^53);
//   * enums by name, google.protobuf.Timestamp as RFC 3339 text;
//   * every string through AppendJsonEscaped (common/text.h), so invalid
//     UTF-8 from the command line or a peer never yields invalid JSON.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_CLIENTS_CLI_JSON_OUTPUT_H_
#define RCPTGUARD_CLIENTS_CLI_JSON_OUTPUT_H_

#include <string>
#include <string_view>

#include "google/protobuf/message.h"

namespace rcptguard::cli {

// Appends the members of `message` ("\"name\": value", comma-separated,
// without the braces), for callers that add members of their own; the
// field named `skip` (if any) is left out.
void AppendJsonMembers(std::string& out,
                       const google::protobuf::Message& message,
                       std::string_view skip = {});

// `message` as one JSON object, with a trailing newline.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace rcptguard::cli

#endif  // RCPTGUARD_CLIENTS_CLI_JSON_OUTPUT_H_
