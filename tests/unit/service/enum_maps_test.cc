// Every value of every mapped enum, on both sides (proto_enums.h,
// metrics_enums.h, grpc_status.h).
#include "gtest/gtest.h"
#include "server/service/grpc_status.h"
#include "server/service/metrics_enums.h"
#include "server/service/proto_enums.h"

namespace rcptguard::service {
namespace {

TEST(ProtoEnumsTest, ClientAction) {
  EXPECT_EQ(ToProtoClientAction(harvest::Action::kAccept),
            v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(ToProtoClientAction(harvest::Action::kTarpit),
            v1::CLIENT_ACTION_TARPIT);
  EXPECT_EQ(ToProtoClientAction(harvest::Action::kTempfail),
            v1::CLIENT_ACTION_TEMPFAIL);
  EXPECT_EQ(ToProtoClientAction(harvest::Action::kReject),
            v1::CLIENT_ACTION_REJECT);
}

TEST(ProtoEnumsTest, RecipientStatus) {
  EXPECT_EQ(ToProtoRecipientStatus(directory::LookupStatus::kValid),
            v1::RECIPIENT_STATUS_VALID);
  EXPECT_EQ(ToProtoRecipientStatus(directory::LookupStatus::kUnknown),
            v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_EQ(ToProtoRecipientStatus(directory::LookupStatus::kNotServed),
            v1::RECIPIENT_STATUS_NOT_SERVED);
  EXPECT_EQ(ToProtoRecipientStatus(directory::LookupStatus::kMalformed),
            v1::RECIPIENT_STATUS_MALFORMED);
}

TEST(ProtoEnumsTest, DomainMode) {
  EXPECT_EQ(ToProtoDomainMode(directory::DomainMode::kEnforce),
            v1::DOMAIN_MODE_ENFORCE);
  EXPECT_EQ(ToProtoDomainMode(directory::DomainMode::kMonitor),
            v1::DOMAIN_MODE_MONITOR);
}

TEST(MetricsEnumsTest, ClientAction) {
  EXPECT_EQ(ToMetricsClientAction(harvest::Action::kAccept),
            metrics::ClientAction::kAccept);
  EXPECT_EQ(ToMetricsClientAction(harvest::Action::kTarpit),
            metrics::ClientAction::kTarpit);
  EXPECT_EQ(ToMetricsClientAction(harvest::Action::kTempfail),
            metrics::ClientAction::kTempfail);
  EXPECT_EQ(ToMetricsClientAction(harvest::Action::kReject),
            metrics::ClientAction::kReject);
}

TEST(MetricsEnumsTest, RecipientStatus) {
  EXPECT_EQ(ToMetricsRecipientStatus(directory::LookupStatus::kValid),
            metrics::RecipientStatus::kValid);
  EXPECT_EQ(ToMetricsRecipientStatus(directory::LookupStatus::kUnknown),
            metrics::RecipientStatus::kUnknown);
  EXPECT_EQ(ToMetricsRecipientStatus(directory::LookupStatus::kNotServed),
            metrics::RecipientStatus::kNotServed);
  EXPECT_EQ(ToMetricsRecipientStatus(directory::LookupStatus::kMalformed),
            metrics::RecipientStatus::kMalformed);
}

TEST(MetricsEnumsTest, ReloadResult) {
  EXPECT_EQ(ToMetricsReloadResult(ReloadResult::Kind::kLoaded),
            metrics::ReloadKind::kSuccess);
  EXPECT_EQ(ToMetricsReloadResult(ReloadResult::Kind::kUnchanged),
            metrics::ReloadKind::kUnchanged);
  EXPECT_EQ(ToMetricsReloadResult(ReloadResult::Kind::kRefused),
            metrics::ReloadKind::kRefused);
  EXPECT_EQ(ToMetricsReloadResult(ReloadResult::Kind::kFailed),
            metrics::ReloadKind::kFailed);
}

TEST(GrpcStatusTest, KeepsCodeAndMessage) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  const grpc::Status s =
      ToGrpcStatus(absl::ResourceExhaustedError("over its budget"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(s.error_message(), "over its budget");
}

TEST(GrpcStatusTest, NonCanonicalCodeIsUnknown) {
  const absl::Status odd(static_cast<absl::StatusCode>(99), "odd");
  EXPECT_EQ(ToGrpcStatus(odd).error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(ToGrpcStatus(odd).error_message(), "odd");
}

}  // namespace
}  // namespace rcptguard::service
