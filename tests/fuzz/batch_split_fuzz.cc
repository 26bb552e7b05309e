// libFuzzer target for the ValidateBatchStream message splitter
// (SplitBatchRequest): the server splits each stream message into its
// requests without parsing them, so that one bad request is answered in its
// own result. Whatever the octets:
// - it never crashes, and an error is InvalidArgument;
// - on success every part is a view inside the input, in order, at most
//   kMaxBatchRequests of them;
// - it agrees with protobuf's own parser: when the splitter accepts and
//   every part parses as a ValidateRequest, the whole message parses as a
//   ValidateBatchRequest with the same batch_id and the same requests; and
//   any message protobuf parses, written out again without unknown fields,
//   splits into exactly its requests.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/service/wire.h"

namespace {

using rcptguard::service::kMaxBatchRequests;
using rcptguard::service::SplitBatchRequest;
namespace v1 = rcptguard::v1;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool Same(const google::protobuf::Message& a,
          const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// The splitter's view of `data`: Check()s the invariants that hold for any
// input; returns whether it accepted.
bool Split(std::string_view data, uint64_t* id,
           std::vector<std::string_view>* parts) {
  const absl::Status status = SplitBatchRequest(data, id, parts);
  if (!status.ok()) {
    Check(status.code() == absl::StatusCode::kInvalidArgument);
    Check(!status.message().empty());
    return false;
  }
  Check(parts->size() <= static_cast<size_t>(kMaxBatchRequests));
  const char* previous_end = data.data();
  for (std::string_view part : *parts) {
    Check(part.data() >= previous_end);
    Check(part.data() + part.size() <= data.data() + data.size());
    previous_end = part.data() + part.size();
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  uint64_t id = 0;
  std::vector<std::string_view> parts;
  const bool accepted = Split(data, &id, &parts);

  if (accepted) {
    v1::ValidateBatchRequest expected;
    expected.set_batch_id(id);
    bool all_parse = true;
    for (std::string_view part : parts) {
      all_parse = all_parse && expected.add_requests()->ParseFromArray(
                                   part.data(), static_cast<int>(part.size()));
    }
    if (all_parse) {
      v1::ValidateBatchRequest whole;
      Check(whole.ParseFromArray(data.data(), static_cast<int>(data.size())));
      whole.DiscardUnknownFields();
      expected.DiscardUnknownFields();
      Check(Same(whole, expected));
    }
  }

  // Round trip: what protobuf parses, written again, splits into its own
  // requests (within the limit; over it, the splitter must refuse).
  v1::ValidateBatchRequest parsed;
  if (!parsed.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return 0;
  }
  // protobuf keeps a known field of the wrong wire type as an unknown
  // field; the splitter refuses it (as the unary path does), so the round
  // trip is of the message protobuf understood.
  parsed.DiscardUnknownFields();
  const std::string again = parsed.SerializeAsString();
  uint64_t again_id = 0;
  std::vector<std::string_view> again_parts;
  const bool again_ok = Split(again, &again_id, &again_parts);
  if (parsed.requests_size() > kMaxBatchRequests) {
    Check(!again_ok);
    return 0;
  }
  Check(again_ok);
  Check(again_id == parsed.batch_id());
  Check(again_parts.size() == static_cast<size_t>(parsed.requests_size()));
  for (size_t i = 0; i < again_parts.size(); ++i) {
    v1::ValidateRequest request;
    Check(request.ParseFromArray(again_parts[i].data(),
                                 static_cast<int>(again_parts[i].size())));
    Check(Same(request, parsed.requests(static_cast<int>(i))));
  }
  return 0;
}
