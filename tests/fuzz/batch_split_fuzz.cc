// libFuzzer target for the ValidateBatchStream message splitter
// (SplitBatchRequest): the server splits each stream message into its
// requests without parsing them, so that one bad request is answered in its
// own result. Whatever the octets:
// - it never crashes; an error is InvalidArgument with a message; at most
//   kMaxBatchRequests requests come out;
// - it agrees with parsing the whole message as a ValidateBatchRequest:
//   split and every request parses <=> the whole parses, with the same
//   batch_id and requests; the whole parses (within the limit) but the
//   split fails only for a known field of the wrong wire type (a request
//   that would go unanswered).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/message_differencer.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/service/wire.h"

namespace {

using rcptguard::service::kMaxBatchRequests;
using rcptguard::service::SplitBatchRequest;
namespace internal = rcptguard::internal;
namespace v1 = rcptguard::v1;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool Same(const google::protobuf::Message& a,
          const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  internal::ValidateBatchFrame frame;
  const absl::Status status = SplitBatchRequest(data, &frame);
  if (!status.ok()) {
    Check(status.code() == absl::StatusCode::kInvalidArgument);
    Check(!status.message().empty());
  } else {
    Check(frame.requests_size() <= kMaxBatchRequests);
  }

  // Splitting agrees with parsing the whole message: when both succeed,
  // the requests are the same; when the split succeeds and every request
  // parses, the whole parses; when the whole parses (and is within the
  // limit), the split succeeds.
  v1::ValidateBatchRequest whole;
  const bool whole_ok =
      whole.ParseFromArray(data.data(), static_cast<int>(data.size()));
  if (status.ok()) {
    v1::ValidateBatchRequest expected;
    expected.set_batch_id(frame.batch_id());
    bool all_parse = true;
    for (const std::string& part : frame.requests()) {
      all_parse = all_parse && expected.add_requests()->ParseFromString(part);
    }
    Check(whole_ok == all_parse);
    if (whole_ok) {
      whole.DiscardUnknownFields();
      expected.DiscardUnknownFields();
      Check(Same(whole, expected));
    }
  } else if (whole_ok && whole.requests_size() <= kMaxBatchRequests) {
    // Only a known field of the wrong wire type (kept by protobuf as an
    // unknown field) is refused by the splitter and not by protobuf.
    const google::protobuf::UnknownFieldSet& unknown =
        whole.GetReflection()->GetUnknownFields(whole);
    bool wrong_wire_type = false;
    for (int i = 0; i < unknown.field_count(); ++i) {
      wrong_wire_type |=
          unknown.field(i).number() == 1 || unknown.field(i).number() == 2;
    }
    Check(wrong_wire_type);
  }
  return 0;
}
