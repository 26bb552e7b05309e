#include "server/service/validator.h"

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/directory/directory.h"
#include "server/directory/directory_handle.h"

namespace rcptguard::service {
namespace {

using directory::DirectoryBuilder;
using directory::DomainMode;
using directory::DomainPolicy;

std::shared_ptr<const directory::Directory> MakeDirectory(
    absl::Time built_at = absl::Now()) {
  std::vector<DomainPolicy> domains(2);
  domains[0].name = "example.com";
  domains[0].subaddress_delimiters = "+";
  domains[0].aliases = {"alias.example.com"};
  domains[0].replies.unknown = "No such mailbox here";
  domains[1].name = "example.org";
  domains[1].mode = DomainMode::kMonitor;
  auto builder = DirectoryBuilder::Create(directory::SipKey{1, 2}, domains);
  EXPECT_TRUE(builder.ok()) << builder.status();
  for (const char* a : {"alice@example.com", "bob@example.org"}) {
    EXPECT_EQ(builder->AddAddress(a), DirectoryBuilder::AddOutcome::kAdded);
  }
  directory::DirectoryInfo info;
  info.version = "v-test";
  info.built_at = built_at;
  auto dir = std::move(*builder).Build(info);
  EXPECT_TRUE(dir.ok()) << dir.status();
  return *dir;
}

v1::ServerConfig Config() {
  v1::ServerConfig config;
  config.mutable_limits()->set_max_recipients_per_request(4);
  config.mutable_limits()->set_max_address_length(300);
  config.mutable_replies()->set_malformed("Syntax, please");
  return config;
}

class ValidatorTest : public ::testing::Test {
 protected:
  ValidatorTest() : config_(Config()), validator_(config_, &handle_) {
    handle_.Replace(MakeDirectory());
  }
  v1::ServerConfig config_;
  directory::DirectoryHandle handle_;
  Validator validator_;
};

TEST_F(ValidatorTest, OneVerdictPerRecipientInOrderWithReplies) {
  v1::ValidateRequest request;
  request.set_request_id(42);
  for (const char* r : {"<Alice+x@Example.com>", "nobody@alias.example.com",
                        "x@not-ours.net", "@@"}) {
    request.add_recipients(r);
  }
  v1::ValidateResponse response;
  ASSERT_TRUE(validator_.Validate(request, &response).ok());
  EXPECT_EQ(response.request_id(), 42u);
  EXPECT_EQ(response.directory_version(), "v-test");
  ASSERT_EQ(response.verdicts_size(), 4);

  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
  EXPECT_EQ(response.verdicts(0).reply().code(), 250u);
  EXPECT_EQ(response.verdicts(0).reply().enhanced_status(), "2.1.5");
  EXPECT_EQ(response.verdicts(0).reply().text(), "Recipient OK");

  EXPECT_EQ(response.verdicts(1).status(), v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_EQ(response.verdicts(1).reply().code(), 550u);
  EXPECT_EQ(response.verdicts(1).reply().enhanced_status(), "5.1.1");
  EXPECT_EQ(response.verdicts(1).reply().text(), "No such mailbox here");

  EXPECT_EQ(response.verdicts(2).status(), v1::RECIPIENT_STATUS_NOT_SERVED);
  EXPECT_EQ(response.verdicts(2).reply().code(), 554u);
  EXPECT_EQ(response.verdicts(2).reply().enhanced_status(), "5.7.1");
  EXPECT_EQ(response.verdicts(2).reply().text(), "Relay access denied");

  EXPECT_EQ(response.verdicts(3).status(), v1::RECIPIENT_STATUS_MALFORMED);
  EXPECT_EQ(response.verdicts(3).reply().code(), 501u);
  EXPECT_EQ(response.verdicts(3).reply().enhanced_status(), "5.1.3");
  EXPECT_EQ(response.verdicts(3).reply().text(), "Syntax, please");
  EXPECT_FALSE(response.verdicts(3).detail().empty());

  EXPECT_EQ(response.client().action(), v1::CLIENT_ACTION_ACCEPT);
}

TEST_F(ValidatorTest, MonitorDomainAcceptsUnknownButSaysSo) {
  v1::ValidateRequest request;
  request.add_recipients("nobody@example.org");
  request.add_recipients("bob@example.org");
  v1::ValidateResponse response;
  ASSERT_TRUE(validator_.Validate(request, &response).ok());
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_EQ(response.verdicts(0).reply().code(), 250u);
  EXPECT_TRUE(response.verdicts(0).monitor_only());
  EXPECT_EQ(response.verdicts(1).status(), v1::RECIPIENT_STATUS_VALID);
  EXPECT_FALSE(response.verdicts(1).monitor_only());
}

TEST_F(ValidatorTest, EmptyRequestIsAnsweredEmpty) {
  v1::ValidateResponse response;
  ASSERT_TRUE(validator_.Validate(v1::ValidateRequest(), &response).ok());
  EXPECT_EQ(response.verdicts_size(), 0);
}

TEST_F(ValidatorTest, TooManyRecipientsIsInvalidArgument) {
  v1::ValidateRequest request;
  for (int i = 0; i < 5; ++i) request.add_recipients("alice@example.com");
  v1::ValidateResponse response;
  absl::Status status = validator_.Validate(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "recipients: 5 exceeds the limit of 4 per request");
}

TEST_F(ValidatorTest, OversizeAddressIsInvalidArgumentNamingIt) {
  v1::ValidateRequest request;
  request.add_recipients("alice@example.com");
  request.add_recipients(std::string(301, 'x'));
  v1::ValidateResponse response;
  absl::Status status = validator_.Validate(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "recipients[1]: 301 octets exceeds the limit of 300");
}

TEST(ValidatorNoDirectoryTest, UnavailableUntilLoaded) {
  v1::ServerConfig config = Config();
  directory::DirectoryHandle handle;
  Validator validator(config, &handle);
  v1::ValidateRequest request;
  request.add_recipients("alice@example.com");
  v1::ValidateResponse response;
  absl::Status status = validator.Validate(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  handle.Replace(MakeDirectory());
  EXPECT_TRUE(validator.Validate(request, &response).ok());
}

}  // namespace
}  // namespace rcptguard::service

namespace rcptguard::service {
namespace {

TEST(ValidatorStaleTest, StaleDirectoryDefersUnknownRecipients) {
  v1::ServerConfig config = Config();
  config.mutable_directory()->set_stale_after("24h");
  directory::DirectoryHandle handle;
  handle.Replace(MakeDirectory(absl::Now() - absl::Hours(25)));
  Validator validator(config, &handle);
  v1::ValidateRequest request;
  request.add_recipients("nobody@example.com");
  request.add_recipients("alice@example.com");
  request.add_recipients("nobody@example.org");  // MONITOR: still accepted
  v1::ValidateResponse response;
  ASSERT_TRUE(validator.Validate(request, &response).ok());
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_EQ(response.verdicts(0).reply().code(), 450u);
  EXPECT_EQ(response.verdicts(0).reply().enhanced_status(), "4.1.1");
  EXPECT_EQ(response.verdicts(0).reply().text(),
            "Recipient not verified: directory out of date, try again later");
  EXPECT_EQ(response.verdicts(1).reply().code(), 250u);
  EXPECT_EQ(response.verdicts(2).reply().code(), 250u);

  // A fresh directory answers 550 again.
  handle.Replace(MakeDirectory(absl::Now()));
  response.Clear();
  ASSERT_TRUE(validator.Validate(request, &response).ok());
  EXPECT_EQ(response.verdicts(0).reply().code(), 550u);
}

TEST(ValidatorStaleTest, ZeroTurnsStalenessOff) {
  v1::ServerConfig config = Config();
  config.mutable_directory()->set_stale_after("0s");
  directory::DirectoryHandle handle;
  handle.Replace(MakeDirectory(absl::Now() - absl::Hours(24 * 365)));
  Validator validator(config, &handle);
  v1::ValidateRequest request;
  request.add_recipients("nobody@example.com");
  v1::ValidateResponse response;
  ASSERT_TRUE(validator.Validate(request, &response).ok());
  EXPECT_EQ(response.verdicts(0).reply().code(), 550u);
}

TEST(ValidatorStaleTest, AgeIsToldByTheInjectedClock) {
  FakeClock clock;
  v1::ServerConfig config = Config();
  config.mutable_directory()->set_stale_after("24h");
  directory::DirectoryHandle handle;
  handle.Replace(MakeDirectory(clock.Now() - absl::Hours(25)));
  Validator validator(config, &handle, nullptr, nullptr, &clock);
  v1::ValidateRequest request;
  request.add_recipients("nobody@example.com");
  v1::ValidateResponse response;
  ASSERT_TRUE(validator.Validate(request, &response).ok());
  EXPECT_EQ(response.verdicts(0).reply().code(), 450u);
  EXPECT_EQ(response.verdicts(0).reply().enhanced_status(), "4.1.1");

  // Fresh by the fake clock (years stale by the real one): 550.
  handle.Replace(MakeDirectory(clock.Now()));
  response.Clear();
  ASSERT_TRUE(validator.Validate(request, &response).ok());
  EXPECT_EQ(response.verdicts(0).reply().code(), 550u);

  // 24 hours later it is not stale yet; a second more and it is.
  clock.Advance(absl::Hours(24));
  response.Clear();
  ASSERT_TRUE(validator.Validate(request, &response).ok());
  EXPECT_EQ(response.verdicts(0).reply().code(), 550u);
  clock.Advance(absl::Seconds(1));
  response.Clear();
  ASSERT_TRUE(validator.Validate(request, &response).ok());
  EXPECT_EQ(response.verdicts(0).reply().code(), 450u);
}

}  // namespace
}  // namespace rcptguard::service

namespace rcptguard::service {
namespace {

// A detector whose one rule tarpits a /32 from its first unknown recipient,
// 10 s per recipient.
std::unique_ptr<harvest::Detector> TarpitDetector() {
  harvest::HarvestConfig config = harvest::HarvestConfig::Defaults();
  config.rules.clear();
  harvest::HarvestRule r;
  r.name = "t";
  r.scopes = {"v4/32", "v6/128"};
  r.window = absl::Minutes(10);
  r.min_unknown = 1;
  r.action = harvest::Action::kTarpit;
  r.base_delay = absl::Seconds(10);
  r.max_delay = absl::Seconds(10);
  config.rules.push_back(r);
  auto d = harvest::Detector::Create(std::move(config), RealClock::Get(), 2);
  EXPECT_TRUE(d.ok()) << d.status();
  return std::move(*d);
}

class ValidatorHarvestTest : public ::testing::Test {
 protected:
  ValidatorHarvestTest()
      : config_(Config()),
        detector_(TarpitDetector()),
        validator_(config_, &handle_, detector_.get()) {
    handle_.Replace(MakeDirectory());
  }
  v1::ValidateResponse Ask(const std::string& ip, uint32_t max_delay_ms = 0) {
    v1::ValidateRequest request;
    request.mutable_context()->set_client_ip(ip);
    request.mutable_context()->set_mail_from("s@sender.example");
    request.set_max_delay_ms(max_delay_ms);
    request.add_recipients("nobody@example.com");
    v1::ValidateResponse response;
    EXPECT_TRUE(validator_.Validate(request, &response).ok());
    return response;
  }
  v1::ServerConfig config_;
  directory::DirectoryHandle handle_;
  std::unique_ptr<harvest::Detector> detector_;
  Validator validator_;
};

TEST_F(ValidatorHarvestTest, MissingClientIpSaysHarvestDefenceDidNotRun) {
  const v1::ValidateResponse r = Ask("");
  EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(r.client().harvest_skipped(), v1::HARVEST_SKIP_NO_CLIENT_IP);
}

TEST_F(ValidatorHarvestTest, UnparsableClientIpSaysHarvestDefenceDidNotRun) {
  const v1::ValidateResponse r = Ask("not-an-ip");
  EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_ACCEPT);
  EXPECT_EQ(r.client().harvest_skipped(),
            v1::HARVEST_SKIP_UNPARSABLE_CLIENT_IP);
}

TEST_F(ValidatorHarvestTest, JudgedRequestHasNoSkipReason) {
  const v1::ValidateResponse r = Ask("192.0.2.7");
  EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_TARPIT);
  EXPECT_EQ(r.client().harvest_skipped(), v1::HARVEST_SKIP_UNSPECIFIED);
  EXPECT_EQ(r.client().delay_ms(), 10000u);
}

TEST_F(ValidatorHarvestTest, DelayIsCappedAtTheEdgesMaximum) {
  const v1::ValidateResponse r = Ask("192.0.2.8", 2500);
  EXPECT_EQ(r.client().action(), v1::CLIENT_ACTION_TARPIT);
  EXPECT_EQ(r.client().delay_ms(), 2500u);
}

TEST(ValidatorNoDetectorTest, HarvestDisabledIsSaid) {
  v1::ServerConfig config = Config();
  directory::DirectoryHandle handle;
  handle.Replace(MakeDirectory());
  Validator validator(config, &handle);
  v1::ValidateRequest request;
  request.mutable_context()->set_client_ip("192.0.2.1");
  request.add_recipients("alice@example.com");
  v1::ValidateResponse response;
  ASSERT_TRUE(validator.Validate(request, &response).ok());
  EXPECT_EQ(response.client().harvest_skipped(), v1::HARVEST_SKIP_DISABLED);
}

TEST(DelayCapTest, ApiMaximumHolds) {
  v1::ValidateRequest request;
  EXPECT_EQ(DelayCapMs(request), kMaxDelayMs);
  request.set_max_delay_ms(25000);
  EXPECT_EQ(DelayCapMs(request), 25000u);
  request.set_max_delay_ms(kMaxDelayMs + 1);
  EXPECT_EQ(DelayCapMs(request), kMaxDelayMs);
  harvest::Verdict verdict;
  verdict.action = harvest::Action::kTarpit;
  verdict.delay = absl::Minutes(9);  // more than any rule may give
  v1::ClientVerdict client;
  FillClientVerdict(verdict, &client);
  EXPECT_EQ(client.delay_ms(), kMaxDelayMs);
}

TEST_F(ValidatorTest, ServedDomainsListsNamesAliasesAndModes) {
  v1::ServedDomains out;
  ASSERT_TRUE(validator_.ServedDomains(&out).ok());
  EXPECT_EQ(out.directory_version(), "v-test");
  EXPECT_FALSE(out.stale());
  ASSERT_EQ(out.domains_size(), 2);
  EXPECT_EQ(out.domains(0).name(), "example.com");
  EXPECT_THAT(out.domains(0).aliases(),
              ::testing::ElementsAre("alias.example.com"));
  EXPECT_FALSE(out.domains(0).monitor());
  EXPECT_EQ(out.domains(1).name(), "example.org");
  EXPECT_TRUE(out.domains(1).monitor());
}

TEST(ValidatorNoDirectoryTest, ServedDomainsUnavailableUntilLoaded) {
  v1::ServerConfig config = Config();
  directory::DirectoryHandle handle;
  Validator validator(config, &handle);
  v1::ServedDomains out;
  EXPECT_EQ(validator.ServedDomains(&out).code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace rcptguard::service
