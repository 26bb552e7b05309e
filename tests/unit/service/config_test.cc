#include "server/service/config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard::service {
namespace {

using ::testing::HasSubstr;

constexpr char kValid[] = R"(
domains { name: "Example.COM." subaddress_delimiters: "+-" aliases: "mail.example.com" }
domains { name: "bücher.example" mode: DOMAIN_MODE_MONITOR }
directory { ldif_files: "sample.ldif" preset: "ad" }
)";

TEST(ConfigTest, ValidConfigGetsDefaultsAndResolvedPaths) {
  auto config = ParseConfig(kValid, "test.textproto", "/etc/rcptguard");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_address(), "127.0.0.1:50051");
  EXPECT_EQ(config->limits().max_recipients_per_request(), 1000u);
  EXPECT_EQ(config->limits().max_address_length(), 1024u);
  EXPECT_EQ(config->limits().max_message_bytes(), 1u << 20);
  EXPECT_EQ(config->shutdown().grace_ms(), 1000u);
  EXPECT_EQ(config->shutdown().drain_timeout_ms(), 10000u);
  EXPECT_EQ(config->directory().ldif_files(0), "/etc/rcptguard/sample.ldif");
  EXPECT_EQ(config->domains(0).mode(), v1::DOMAIN_MODE_ENFORCE);
  EXPECT_EQ(config->domains(1).mode(), v1::DOMAIN_MODE_MONITOR);
}

TEST(ConfigTest, ExplicitZeroGraceIsKept) {
  auto config = ParseConfig(
      std::string(kValid) + "shutdown { grace_ms: 0 drain_timeout_ms: 0 }",
      "t", "");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->shutdown().grace_ms(), 0u);
  EXPECT_EQ(config->shutdown().drain_timeout_ms(), 0u);
}

TEST(ConfigTest, AbsolutePathsAreKept) {
  auto config = ParseConfig(
      R"(domains { name: "example.com" }
         directory { ldif_files: "/data/export.ldif" preset: "openldap" })",
      "t", "/etc");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->directory().ldif_files(0), "/data/export.ldif");
}

struct BadCase {
  const char* name;
  const char* text;
  const char* error;
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

constexpr char kDir[] = R"( directory { ldif_files: "a.ldif" preset: "ad" } )";

TEST_P(BadConfigTest, NamesTheFieldAndReason) {
  // Fixtures without a directory section get a valid one, so the error
  // asserted is the fixture's own.
  std::string text = GetParam().text;
  if (text.find("directory") == std::string::npos &&
      text.find("domains { name: \"a.com\" }") != std::string::npos) {
    text += kDir;
  }
  auto config = ParseConfig(text, "bad.textproto", "");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, BadConfigTest,
    ::testing::Values(
        BadCase{"SyntaxError", "domains { name: ", "bad.textproto:1:"},
        BadCase{"UnknownField", "domians { name: \"a.com\" }",
                "bad.textproto:1:9: Message type \"rcptguard.v1.ServerConfig\" "
                "has no field named \"domians\"."},
        BadCase{"NoDomains", R"( directory { ldif_files: "a.ldif" preset: "ad" } )",
                "bad.textproto: domains: at least one served domain is "
                "required"},
        BadCase{"BadDomainName", "domains { name: \"exa mple.com\" }",
                "bad.textproto: domains[0].name: "},
        BadCase{"DuplicateDomain",
                "domains { name: \"a.com\" } domains { name: \"A.com.\" }",
                "domains[1].name: domain a.com is listed twice"},
        BadCase{"AliasCollides",
                "domains { name: \"a.com\" } domains { name: \"b.com\" "
                "aliases: \"a.com\" }",
                "domains[1].aliases[0]: domain a.com is listed twice"},
        BadCase{"BadDelimiter",
                "domains { name: \"a.com\" subaddress_delimiters: \"@\" }",
                "domains[0].subaddress_delimiters: '@' is not a supported "
                "delimiter"},
        BadCase{"NoSource", "domains { name: \"a.com\" } directory { preset: \"ad\" }",
                "directory: set snapshot_file or at least one of ldif_files"},
        BadCase{"BothSources",
                "domains { name: \"a.com\" } fingerprint_key_file: \"k\" "
                "directory { ldif_files: \"a\" snapshot_file: \"s\" }",
                "directory: set either snapshot_file or ldif_files, not both"},
        BadCase{"SnapshotWithoutKey",
                "domains { name: \"a.com\" } directory { snapshot_file: \"s\" }",
                "fingerprint_key_file: required with directory.snapshot_file"},
        BadCase{"BadShrink",
                "domains { name: \"a.com\" } directory { ldif_files: \"a\" "
                "preset: \"ad\" max_shrink: 1.5 }",
                "directory.max_shrink: must be between 0 and 1"},
        BadCase{"BadStaleAfter",
                "domains { name: \"a.com\" } directory { ldif_files: \"a\" "
                "preset: \"ad\" stale_after: \"one day\" }",
                "directory.stale_after: invalid duration \"one day\""},
        BadCase{"BadHarvestRule",
                "domains { name: \"a.com\" } harvest { rules { name: \"x\" "
                "scopes: \"v4/32\" window: \"10m\" min_unknown: 3 } }",
                "harvest.rules[0].action: must be HARVEST_ACTION_TARPIT"},
        BadCase{"BadPreset",
                "domains { name: \"a.com\" } directory { ldif_files: \"a\" "
                "preset: \"exchange\" }",
                "directory.preset: must be \"ad\" or \"openldap\" (got "
                "\"exchange\")"},
        BadCase{"EmptyMapping",
                "domains { name: \"a.com\" } directory { ldif_files: \"a\" "
                "mapping { object_classes: \"user\" } }",
                "directory.mapping: needs at least one address or proxy "
                "attribute"},
        BadCase{"ShardBits",
                "domains { name: \"a.com\" } directory { ldif_files: \"a\" "
                "preset: \"ad\" shard_bits: 40 }",
                "directory.shard_bits: must be at most 16"},
        BadCase{"TinyAddressLimit",
                "domains { name: \"a.com\" } limits { max_address_length: 10 }",
                "limits.max_address_length: must be between 256 and 65536"},
        BadCase{"HugeMessages",
                "domains { name: \"a.com\" } limits { max_message_bytes: "
                "1000000000 }",
                "limits.max_message_bytes: must be between 4096 and "
                "67108864"},
        BadCase{"TooManyRecipients",
                "domains { name: \"a.com\" } limits { "
                "max_recipients_per_request: 1000000 }",
                "limits.max_recipients_per_request: must be at most 100000"},
        BadCase{"LongDrain",
                "domains { name: \"a.com\" } shutdown { drain_timeout_ms: "
                "9999999 }",
                "shutdown.drain_timeout_ms: must be at most 600000"}),
    [](const ::testing::TestParamInfo<BadCase>& info) {
      return info.param.name;
    });

TEST(ConfigTest, MissingFileIsNotFoundNamingThePath) {
  auto config = LoadConfig("/nonexistent/rcptguard.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("/nonexistent/rcptguard.textproto"));
}

}  // namespace
}  // namespace rcptguard::service
