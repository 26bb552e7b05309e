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

}  // namespace
}  // namespace rcptguard::service
