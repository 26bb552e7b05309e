#include "server/service/wire.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.pb.h"

namespace rcptguard::service {
namespace {

using ::testing::HasSubstr;

std::string Field(int number, const std::string& value) {
  std::string out;
  out.push_back(static_cast<char>((number << 3) | 2));
  out.push_back(static_cast<char>(value.size()));  // < 128 here
  return out + value;
}

const google::protobuf::Descriptor* Request() {
  return v1::ValidateRequest::descriptor();
}

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

TEST(DescribeMalformedTest, NamesTheFieldAndWhatIsWrong) {
  EXPECT_EQ(DescribeMalformed(Field(2, Field(4, "\xff")), Request()),
            "context.session_id: not valid UTF-8");
  EXPECT_EQ(DescribeMalformed(Field(2, Field(1, "1.2.3.4") + Field(5, "\xc3")),
                              Request()),
            "context.edge_id: not valid UTF-8");
  EXPECT_EQ(DescribeMalformed(Field(3, "a@b.c") + std::string("\x18\x01", 2),
                              Request()),
            "recipients[1]: wire type varint, expected length-delimited");
  EXPECT_EQ(DescribeMalformed(std::string("\x1a\x40"
                                          "ab",
                                          4),
                              Request()),
            "recipients[0]: length 64 runs past the end of the message");
  EXPECT_EQ(DescribeMalformed(std::string("\x08", 1), Request()),
            "request_id: truncated");
  EXPECT_EQ(DescribeMalformed(std::string("\x00\x01", 2), Request()),
            "invalid field tag at octet 0");
  EXPECT_EQ(DescribeMalformed(std::string("\x0b", 1), Request()),
            "request_id: wire type group, expected varint");
  // Unknown fields of any well-formed type are fine.
  EXPECT_EQ(DescribeMalformed(Field(99, "\xff") + Field(3, "a@b.c"), Request()),
            "");
}

TEST(ParseMessageTest, AcceptsAnyOctetsInBytesFields) {
  v1::ValidateRequest request;
  const std::string bytes =
      Field(2, Field(2, "\xff") + Field(3, "x\xff@b.example")) +
      Field(3, "al\xffice@example.com");
  ASSERT_TRUE(ParseMessage(Buffer(bytes), &request).ok());
  EXPECT_EQ(request.context().helo(), "\xff");
  EXPECT_EQ(request.context().mail_from(), "x\xff@b.example");
  ASSERT_EQ(request.recipients_size(), 1);
  EXPECT_EQ(request.recipients(0), "al\xffice@example.com");
}

TEST(ParseMessageTest, RefusesWithInvalidArgumentNamingTheField) {
  v1::ValidateRequest request;
  absl::Status s = ParseMessage(Buffer(Field(2, Field(1, "\xff"))), &request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()),
            "not a valid rcptguard.v1.ValidateRequest: context.client_ip: not "
            "valid UTF-8");
}

TEST(SerializeMessageTest, RoundTrips) {
  v1::ValidateResponse response;
  response.set_request_id(42);
  response.add_verdicts()->set_status(v1::RECIPIENT_STATUS_VALID);
  grpc::ByteBuffer bytes;
  ASSERT_TRUE(SerializeMessage(response, &bytes).ok());
  v1::ValidateResponse back;
  ASSERT_TRUE(ParseMessage(bytes, &back).ok());
  EXPECT_EQ(back.request_id(), 42u);
  EXPECT_EQ(back.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
}

TEST(SplitBatchRequestTest, SplitsWithoutParsingTheRequests) {
  v1::ValidateBatchRequest batch;
  batch.set_batch_id(7);
  batch.add_requests()->add_recipients("alice@example.com");
  batch.add_requests()->set_request_id(3);
  std::string data = batch.SerializeAsString();
  // A request that does not parse is still split (its own problem), and
  // unknown fields are skipped; the last batch_id wins, as in a parser.
  data += Field(2, Field(2, "\xff"));
  data += Field(9, "later") + std::string("\x08\x09", 2);
  internal::ValidateBatchFrame frame;
  ASSERT_TRUE(SplitBatchRequest(data, &frame).ok());
  EXPECT_EQ(frame.batch_id(), 9u);
  ASSERT_EQ(frame.requests_size(), 3);
  v1::ValidateRequest first;
  ASSERT_TRUE(first.ParseFromString(frame.requests(0)));
  EXPECT_EQ(first.recipients(0), "alice@example.com");
  EXPECT_EQ(frame.requests(2), Field(2, "\xff"));
  EXPECT_FALSE(first.ParseFromString(frame.requests(2)));
}

TEST(SplitBatchRequestTest, RefusesWhatIsNotABatch) {
  internal::ValidateBatchFrame frame;
  // requests (field 2) as a varint: protobuf would keep it as an unknown
  // field, and the request would go unanswered.
  absl::Status s = SplitBatchRequest(std::string("\x10\x01", 2), &frame);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              HasSubstr("not a valid rcptguard.v1.ValidateBatchRequest: "));
  EXPECT_THAT(s.message(), HasSubstr("requests"));
  // A request whose length runs past the end.
  s = SplitBatchRequest(std::string("\x12\x40"
                                    "ab",
                                    4),
                        &frame);
  EXPECT_THAT(s.message(), HasSubstr("runs past the end"));
  // A truncated batch_id, a zero tag, and a tag longer than protobuf's
  // five octets (which a lenient splitter once took for an unknown field).
  EXPECT_FALSE(SplitBatchRequest(std::string("\x08", 1), &frame).ok());
  EXPECT_FALSE(SplitBatchRequest(std::string("\x00\x01", 2), &frame).ok());
  EXPECT_FALSE(SplitBatchRequest(std::string("\xb1\xb1\xb1\xb1\xb1\xb1\x61"
                                             "12345678",
                                             15),
                                 &frame)
                   .ok());
}

TEST(SplitBatchRequestTest, MoreThanTheLimitIsRefused) {
  std::string data;
  for (int i = 0; i < kMaxBatchRequests; ++i) data += Field(2, "");
  internal::ValidateBatchFrame frame;
  ASSERT_TRUE(SplitBatchRequest(data, &frame).ok());
  EXPECT_EQ(frame.requests_size(), kMaxBatchRequests);
  data += Field(2, "");
  absl::Status s = SplitBatchRequest(data, &frame);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("more than 1000 requests"));
}

// The frame must read a ValidateBatchRequest's wire format: same numbers,
// same wire types (requests are messages there, octets here).
TEST(SplitBatchRequestTest, FrameMatchesValidateBatchRequest) {
  const auto* frame = internal::ValidateBatchFrame::descriptor();
  const auto* batch = v1::ValidateBatchRequest::descriptor();
  ASSERT_EQ(frame->field_count(), batch->field_count());
  for (int i = 0; i < batch->field_count(); ++i) {
    const auto* want = batch->field(i);
    const auto* got = frame->FindFieldByNumber(want->number());
    ASSERT_NE(got, nullptr) << want->name();
    EXPECT_EQ(got->name(), want->name());
    EXPECT_EQ(got->is_repeated(), want->is_repeated());
    EXPECT_EQ(got->type() == google::protobuf::FieldDescriptor::TYPE_BYTES,
              want->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE)
        << want->name();
    if (got->type() != google::protobuf::FieldDescriptor::TYPE_BYTES) {
      EXPECT_EQ(got->type(), want->type()) << want->name();
    }
  }
}

}  // namespace
}  // namespace rcptguard::service
