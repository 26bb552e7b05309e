// directory.stale_after has one default (ApplyDefaults, config.h): a config
// without it makes Validator and DirectoryManager's status agree on when
// the directory is stale.
#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"
#include "server/service/directory_manager.h"
#include "server/service/validator.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::service {
namespace {

using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::WriteFile;

constexpr char kLdif[] = R"(version: 1

dn: CN=Alice,OU=Users,DC=example,DC=com
objectClass: user
userAccountControl: 512
mail: alice@example.com
)";

// Whether GetStatus says stale, and the reply code of an unknown recipient.
std::pair<bool, uint32_t> Observe(const DirectoryManager& manager,
                                  const Validator& validator) {
  v1::GetStatusResponse status;
  manager.FillStatus(&status);
  v1::ValidateRequest request;
  request.add_recipients("nobody@example.com");
  v1::ValidateResponse response;
  EXPECT_TRUE(validator.Validate(request, &response).ok());
  return {status.stale(), response.verdicts(0).reply().code()};
}

TEST(StaleAfterTest, DefaultIsTheSameForValidatorAndStatus) {
  const std::string dir = MakeTempDir("rg-stale");
  ASSERT_TRUE(WriteFile(dir + "/a.ldif", kLdif).ok());
  auto config = ParseConfig(R"(domains { name: "example.com" }
                               directory { ldif_files: "a.ldif" preset: "ad" }
                               insecure_plaintext: true)",
                            "t", dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->directory().stale_after(), kDefaultStaleAfter);

  FakeClock clock;
  // The directory's age is the export's (the LDIF file's modification
  // time): date the file at the fake clock's now.
  const struct timespec now[2] = {absl::ToTimespec(clock.Now()),
                                  absl::ToTimespec(clock.Now())};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir + "/a.ldif").c_str(), now, 0), 0);
  DirectoryManagerOptions options;
  options.clock = &clock;
  DirectoryManager manager(*config, directory::SipKey{1, 2}, options);
  ASSERT_TRUE(manager.Reload(false, "start").ok());
  Validator validator(*config, manager.handle(), nullptr, nullptr, &clock);

  EXPECT_EQ(Observe(manager, validator), std::make_pair(false, 550u));
  clock.Advance(absl::Hours(24));
  EXPECT_EQ(Observe(manager, validator), std::make_pair(false, 550u));
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(Observe(manager, validator), std::make_pair(true, 450u));
}

// A config that never went through ParseConfig has no defaults: both read
// the empty stale_after as off (neither holds a fallback of its own).
TEST(StaleAfterTest, UnfilledConfigIsOffForBoth) {
  const std::string dir = MakeTempDir("rg-stale");
  ASSERT_TRUE(WriteFile(dir + "/a.ldif", kLdif).ok());
  v1::ServerConfig config;
  config.add_domains()->set_name("example.com");
  config.mutable_directory()->add_ldif_files(dir + "/a.ldif");
  config.mutable_directory()->set_preset("ad");
  config.mutable_limits()->set_max_recipients_per_request(10);
  config.mutable_limits()->set_max_address_length(300);

  FakeClock clock;
  DirectoryManagerOptions options;
  options.clock = &clock;
  DirectoryManager manager(config, directory::SipKey{1, 2}, options);
  ASSERT_TRUE(manager.Reload(false, "start").ok());
  Validator validator(config, manager.handle(), nullptr, nullptr, &clock);
  clock.Advance(absl::Hours(24 * 365));
  EXPECT_EQ(Observe(manager, validator), std::make_pair(false, 550u));
}

}  // namespace
}  // namespace rcptguard::service
