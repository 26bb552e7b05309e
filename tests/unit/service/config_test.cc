#include "server/service/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard::service {
namespace {

using ::testing::HasSubstr;

constexpr char kValid[] = R"(
domains { name: "Example.COM." subaddress_delimiters: "+-" aliases: "mail.example.com" }
domains { name: "bücher.example" mode: DOMAIN_MODE_MONITOR }
directory { ldif_files: "sample.ldif" preset: "ad" }
insecure_plaintext: true
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
         directory { ldif_files: "/data/export.ldif" preset: "openldap" }
         insecure_plaintext: true)",
      "t", "/etc");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->directory().ldif_files(0), "/data/export.ldif");
}

struct BadCase {
  std::string name;
  std::string text;
  std::string error;
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

constexpr char kDir[] = R"( directory { ldif_files: "a.ldif" preset: "ad" } )";
constexpr char kPlain[] = " insecure_plaintext: true ";
constexpr char kTls[] =
    R"( tls { cert_file: "s.crt" key_file: "s.key" client_ca_file: "ca.crt" } )";

TEST_P(BadConfigTest, NamesTheFieldAndReason) {
  // Fixtures without a directory section get a valid one, so the error
  // asserted is the fixture's own.
  std::string text = GetParam().text;
  if (text.find("directory") == std::string::npos &&
      text.find("domains { name: \"a.com\" }") != std::string::npos) {
    text += kDir;
  }
  // ... and a transport, unless the fixture is about the transport.
  if (text.find("tls") == std::string::npos &&
      text.find("insecure_plaintext") == std::string::npos) {
    text += kPlain;
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
        BadCase{"PlaintextOffLoopback",
                "domains { name: \"a.com\" } insecure_plaintext: true "
                "listen_address: \"0.0.0.0:50051\"",
                "insecure_plaintext: plaintext is only allowed on a loopback "
                "address, not 0.0.0.0:50051; configure tls"},
        BadCase{"TlsWithoutClientCa",
                "domains { name: \"a.com\" } tls { cert_file: \"s.crt\" "
                "key_file: \"s.key\" }",
                "tls.client_ca_file: required with tls (mutual TLS)"},
        BadCase{"TlsAndPlaintext",
                std::string("domains { name: \"a.com\" } insecure_plaintext: "
                            "true") + kTls,
                "insecure_plaintext: cannot be set with tls"},
        BadCase{"AccessWithoutTls",
                "domains { name: \"a.com\" } insecure_plaintext: true "
                "access { admin: \"ops\" }",
                "access: needs tls"},
        BadCase{"BadIdentity",
                std::string("domains { name: \"a.com\" } access { admin: "
                            "\"a b\" }") + kTls,
                "access.admin[0]: an identity is"},
        BadCase{"BadReloadInterval",
                "domains { name: \"a.com\" } tls { cert_file: \"s\" "
                "key_file: \"k\" client_ca_file: \"c\" reload_interval: "
                "\"0s\" }",
                "tls.reload_interval: invalid duration \"0s\""},
        BadCase{"BadIdleTimeout",
                "domains { name: \"a.com\" } limits { idle_timeout: \"soon\" }",
                "limits.idle_timeout: invalid duration \"soon\""},
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

TEST(ConfigTest, TransportMustBeChosen) {
  auto config = ParseConfig(std::string(kValid).substr(
                                0, std::string(kValid).find("insecure")),
                            "t", "");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "t: tls: required (mutual TLS); for a loopback demo set "
            "insecure_plaintext: true instead");
}

TEST(ConfigTest, TlsGetsDefaultsAndResolvedPaths) {
  auto config = ParseConfig(
      R"(domains { name: "a.com" } directory { ldif_files: "a.ldif" preset: "ad" }
         listen_address: "0.0.0.0:50051"
         tls { cert_file: "s.crt" key_file: "/k/s.key" client_ca_file: "ca.crt" })",
      "t", "/etc/rcptguard");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tls().cert_file(), "/etc/rcptguard/s.crt");
  EXPECT_EQ(config->tls().key_file(), "/k/s.key");
  EXPECT_EQ(config->tls().client_ca_file(), "/etc/rcptguard/ca.crt");
  EXPECT_EQ(config->tls().reload_interval(), "10s");
  EXPECT_THAT(config->access().validate(), ::testing::ElementsAre("*"));
  EXPECT_THAT(config->access().read(), ::testing::ElementsAre("*"));
  EXPECT_TRUE(config->access().admin().empty());
  EXPECT_EQ(config->limits().idle_timeout(), "5m");
  EXPECT_EQ(config->limits().handshake_timeout(), "10s");
  EXPECT_EQ(config->limits().rate_burst_seconds(), 2u);
}

TEST(ConfigTest, LoopbackAddresses) {
  for (const char* a : {"127.0.0.1:50051", "127.1.2.3:0", "[::1]:50051",
                        "localhost:50051", "ipv4:127.0.0.1:1"}) {
    EXPECT_TRUE(IsLoopbackListenAddress(a)) << a;
  }
  for (const char* a : {"0.0.0.0:50051", "[::]:50051", "10.0.0.1:50051",
                        "example.net:50051", "[::1:50051", "128.0.0.1:1"}) {
    EXPECT_FALSE(IsLoopbackListenAddress(a)) << a;
  }
}

TEST(ConfigTest, MissingFileIsNotFoundNamingThePath) {
  auto config = LoadConfig("/nonexistent/rcptguard.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("/nonexistent/rcptguard.textproto"));
}

// Issue 19: `rcptguardd --check_config` on a FIFO hung in open(2).
TEST(ConfigTest, FifoConfigFailsPromptly) {
  char tmpl[] = "/tmp/rg-config-fifo-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/c.textproto";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const absl::Time start = absl::Now();
  EXPECT_EQ(LoadConfig(path).status(),
            absl::InvalidArgumentError("config file " + path +
                                       ": is a FIFO, not a regular file"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ::unlink(path.c_str());
  ::rmdir(tmpl);
}

TEST(ConfigTest, DeviceConfigIsRefused) {
  EXPECT_EQ(LoadConfig("/dev/zero").status(),
            absl::InvalidArgumentError(
                "config file /dev/zero: is a character device, not a regular "
                "file"));
}

}  // namespace
}  // namespace rcptguard::service
