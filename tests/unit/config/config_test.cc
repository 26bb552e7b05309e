#include "server/config/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/harvest_proto.h"

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
      std::string(kValid) + "shutdown { grace_ms: 0 drain_timeout_ms: 0 }", "t",
      "");
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
        BadCase{"NoDomains",
                R"( directory { ldif_files: "a.ldif" preset: "ad" } )",
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
        BadCase{"NoSource",
                "domains { name: \"a.com\" } directory { preset: \"ad\" }",
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
                            "true") +
                    kTls,
                "insecure_plaintext: cannot be set with tls"},
        BadCase{"AccessWithoutTls",
                "domains { name: \"a.com\" } insecure_plaintext: true "
                "access { admin: \"ops\" }",
                "access: needs tls"},
        BadCase{"BadIdentity",
                std::string("domains { name: \"a.com\" } access { admin: "
                            "\"a b\" }") +
                    kTls,
                "access.admin[0]: an identity is"},
        BadCase{"BadReloadInterval",
                "domains { name: \"a.com\" } tls { cert_file: \"s\" "
                "key_file: \"k\" client_ca_file: \"c\" reload_interval: "
                "\"0s\" }",
                "tls.reload_interval: \"0s\" must be between 1s and 24h"},
        BadCase{"BadIdleTimeout",
                "domains { name: \"a.com\" } limits { idle_timeout: \"soon\" }",
                "limits.idle_timeout: invalid duration \"soon\""},
        BadCase{"BothSources",
                "domains { name: \"a.com\" } fingerprint_key_file: \"k\" "
                "directory { ldif_files: \"a\" snapshot_file: \"s\" }",
                "directory: set either snapshot_file or ldif_files, not both"},
        BadCase{
            "SnapshotWithoutKey",
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
        BadCase{"BadNewClientAction",
                "domains { name: \"a.com\" } harvest { rules { name: \"x\" "
                "scopes: \"v4/24\" window: \"10m\" min_unknown: 3 "
                "action: HARVEST_ACTION_TEMPFAIL "
                "new_client_action: HARVEST_ACTION_REJECT } }",
                "harvest.rules[0].new_client_action: must be "
                "HARVEST_ACTION_ACCEPT_ALL or unset"},
        BadCase{"NewClientActionOnAClientScope",
                "domains { name: \"a.com\" } harvest { rules { name: \"x\" "
                "scopes: \"v4/32\" window: \"10m\" min_unknown: 3 "
                "action: HARVEST_ACTION_TEMPFAIL "
                "new_client_action: HARVEST_ACTION_ACCEPT_ALL } }",
                "harvest.rules[0].new_client_action: ACCEPT_ALL is for NORMAL "
                "rules with a network scope (e.g. v4/24) only"},
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
                "shutdown.drain_timeout_ms: must be at most 600000"},
        // Issue 19 item 5: every numeric field is bounded, and the error
        // names the field, the allowed range and the value.
        BadCase{"MaxEdgeIdsWouldExhaustMemory",
                "domains { name: \"a.com\" } metrics { max_edge_ids: "
                "4294967295 }",
                "bad.textproto: metrics.max_edge_ids: must be at most 10000 "
                "(got 4294967295)"},
        BadCase{"TooManyGrpcThreads",
                "domains { name: \"a.com\" } limits { grpc_threads: 65 }",
                "bad.textproto: limits.grpc_threads: must be between 1 and 64 "
                "(got 65)"},
        BadCase{"ConcurrentStreamsWouldWrapToInt",
                "domains { name: \"a.com\" } limits { "
                "max_concurrent_streams: 4294967295 }",
                "bad.textproto: limits.max_concurrent_streams: must be at most "
                "100000 (got 4294967295)"},
        BadCase{"RecipientsPerSecond",
                "domains { name: \"a.com\" } limits { "
                "recipients_per_second_per_identity: 4000000000 }",
                "bad.textproto: limits.recipients_per_second_per_identity: "
                "must be at most 10000000 (got 4000000000)"},
        BadCase{
            "RateBurst",
            "domains { name: \"a.com\" } limits { rate_burst_seconds: "
            "3601 }",
            "bad.textproto: limits.rate_burst_seconds: must be at most 3600 "
            "(got 3601)"},
        BadCase{"LongGrace",
                "domains { name: \"a.com\" } shutdown { grace_ms: 4294967295 }",
                "bad.textproto: shutdown.grace_ms: must be at most 600000 (got "
                "4294967295)"},
        BadCase{"ShardBitsRange",
                "domains { name: \"a.com\" } directory { ldif_files: \"a\" "
                "preset: \"ad\" shard_bits: 4294967295 }",
                "bad.textproto: directory.shard_bits: must be at most 16 (got "
                "4294967295)"},
        BadCase{"AddressLengthRange",
                "domains { name: \"a.com\" } limits { max_address_length: "
                "4294967295 }",
                "bad.textproto: limits.max_address_length: must be between 256 "
                "and 65536 (got 4294967295)"},
        BadCase{"SharedNoAddress",
                "domains { name: \"a.com\" } harvest { shared { } }",
                "harvest.shared.address: required"},
        BadCase{"SharedBadAddress",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"redis\" } }",
                "harvest.shared.address: \"redis\" is not host:port or "
                "unix:/path"},
        BadCase{"SharedBadPort",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"redis:99999\" } }",
                "harvest.shared.address: \"redis:99999\" is not host:port"},
        BadCase{"SharedUnixWithoutPath",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"unix:\" } }",
                "harvest.shared.address: \"unix:\" needs a socket path"},
        BadCase{"SharedUserWithoutPassword",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"r:6379\" username: \"rg\" } }",
                "harvest.shared.username: needs password_file"},
        BadCase{"SharedPrefixWithSpace",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"r:6379\" key_prefix: \"a b\" } }",
                "harvest.shared.key_prefix: printable ASCII without spaces"},
        BadCase{"SharedDatabase",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"r:6379\" database: 16 } }",
                "harvest.shared.database: at most 15"},
        BadCase{"SharedFlushInterval",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"r:6379\" flush_interval: \"1ms\" } }",
                "harvest.shared.flush_interval: must be between 10ms and 10s"},
        BadCase{"SharedTimeoutUnparsable",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"r:6379\" command_timeout: \"soon\" } }",
                "harvest.shared.command_timeout: invalid duration \"soon\""},
        BadCase{"SharedQueueBound",
                "domains { name: \"a.com\" } harvest { shared { address: "
                "\"r:6379\" max_queued_deltas: 20000000 } }",
                "harvest.shared.max_queued_deltas: at most 10000000"},
        BadCase{"HarvestDsnMaxRecipients",
                "domains { name: \"a.com\" } harvest { dsn_max_recipients: "
                "4294967295 }",
                "bad.textproto: harvest.dsn_max_recipients: must be at most "
                "1000000 (got 4294967295)"},
        BadCase{"HarvestMinUnknown",
                "domains { name: \"a.com\" } harvest { rules { name: \"x\" "
                "scopes: \"v4/32\" window: \"10m\" min_unknown: 4294967295 "
                "action: HARVEST_ACTION_TEMPFAIL } }",
                "bad.textproto: harvest.rules[0].min_unknown: must be at most "
                "1000000 (got 4294967295)"},
        BadCase{"HarvestMinTotal",
                "domains { name: \"a.com\" } harvest { rules { name: \"x\" "
                "scopes: \"v4/32\" window: \"10m\" min_unknown: 3 "
                "min_total: 1000001 action: HARVEST_ACTION_TEMPFAIL } }",
                "bad.textproto: harvest.rules[0].min_total: must be at most "
                "1000000 (got 1000001)"},
        // Durations: parsed into absl::Duration and bounded; before, they
        // were cast to int milliseconds ("4294967.396s" became 100 ms and
        // "600h" wrapped negative).
        BadCase{"DurationWrappingIntMillis",
                "domains { name: \"a.com\" } limits { idle_timeout: "
                "\"4294967.396s\" }",
                "bad.textproto: limits.idle_timeout: \"4294967.396s\" must be "
                "between 1s and 24h"},
        BadCase{"DurationWrappingNegative",
                "domains { name: \"a.com\" } limits { handshake_timeout: "
                "\"600h\" }",
                "bad.textproto: limits.handshake_timeout: \"600h\" must be "
                "between 100ms and 5m"},
        BadCase{"NegativeDuration",
                "domains { name: \"a.com\" } limits { idle_timeout: \"-5s\" }",
                "bad.textproto: limits.idle_timeout: \"-5s\" must be between "
                "1s and 24h"},
        BadCase{"ZeroWhereNotAllowed",
                "domains { name: \"a.com\" } limits { handshake_timeout: "
                "\"0s\" }",
                "bad.textproto: limits.handshake_timeout: \"0s\" must be "
                "between 100ms and 5m"},
        BadCase{"MaxConnectionAgeTooLong",
                "domains { name: \"a.com\" } limits { max_connection_age: "
                "\"48h\" }",
                "bad.textproto: limits.max_connection_age: \"48h\" must be "
                "0s (off) or between 1s and 24h"},
        BadCase{"MaxConnectionAgeGraceZero",
                "domains { name: \"a.com\" } limits { "
                "max_connection_age_grace: \"0s\" }",
                "bad.textproto: limits.max_connection_age_grace: \"0s\" must "
                "be between 1s and 1h"},
        BadCase{"MaxConnectionAgeNotADuration",
                "domains { name: \"a.com\" } limits { max_connection_age: "
                "\"5\" }",
                "bad.textproto: limits.max_connection_age: invalid duration "
                "\"5\" (use e.g. \"2s\", \"24h\")"},
        BadCase{"LongReloadInterval",
                "domains { name: \"a.com\" } tls { cert_file: \"s\" "
                "key_file: \"k\" client_ca_file: \"c\" reload_interval: "
                "\"600h\" }",
                "bad.textproto: tls.reload_interval: \"600h\" must be between "
                "1s and 24h"},
        BadCase{"WatchIntervalTooShort",
                "domains { name: \"a.com\" } fingerprint_key_file: \"k\" "
                "directory { snapshot_file: \"s\" watch_interval: \"1ns\" }",
                "bad.textproto: directory.watch_interval: \"1ns\" must be 0s "
                "(off) or between 10ms and 24h"},
        BadCase{"StaleAfterTooLong",
                "domains { name: \"a.com\" } directory { ldif_files: \"a\" "
                "preset: \"ad\" stale_after: \"721h\" }",
                "bad.textproto: directory.stale_after: \"721h\" must be 0s "
                "(off) or between 1s and 720h"},
        BadCase{"NegativeStaleAfter",
                "domains { name: \"a.com\" } directory { ldif_files: \"a\" "
                "preset: \"ad\" stale_after: \"-1h\" }",
                "bad.textproto: directory.stale_after: \"-1h\" must be 0s "
                "(off) or between 1s and 720h"},
        BadCase{"HarvestWindowTooLong",
                "domains { name: \"a.com\" } harvest { rules { name: \"x\" "
                "scopes: \"v4/32\" window: \"4294967.396s\" min_unknown: 3 "
                "action: HARVEST_ACTION_TEMPFAIL } }",
                "bad.textproto: harvest.rules[0].window: must be between 1s "
                "and 24h"}),
    [](const ::testing::TestParamInfo<BadCase>& info) {
      return info.param.name;
    });

TEST(ConfigTest, TransportMustBeChosen) {
  auto config = ParseConfig(
      std::string(kValid).substr(0, std::string(kValid).find("insecure")), "t",
      "");
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
  // No maximum connection age unless asked for; a grace for when it is.
  EXPECT_EQ(config->limits().max_connection_age(), "0s");
  EXPECT_EQ(config->limits().max_connection_age_grace(), "30s");
  // One thread serves every call unless asked for more.
  EXPECT_EQ(config->limits().grpc_threads(), 1u);
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

TEST(ConfigTest, SharedHarvestPasswordFileIsReadAndChecked) {
  const std::string text =
      "domains { name: \"a.com\" } insecure_plaintext: true "
      "directory { ldif_files: \"a.ldif\" preset: \"ad\" } "
      "harvest { shared { address: \"unix:/run/r.sock\" "
      "password_file: \"/nonexistent/pw\" } }";
  auto config = ParseConfig(text, "c.textproto", "");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("harvest.shared.password_file /nonexistent/pw"));
  // Defaults when the block is there with an address only.
  auto ok = ParseConfig(
      "domains { name: \"a.com\" } insecure_plaintext: true "
      "directory { ldif_files: \"a.ldif\" preset: \"ad\" } "
      "harvest { shared { address: \"[::1]:6379\" } }",
      "c.textproto", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto shared = service::SharedHarvestFromProto(ok->harvest().shared());
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(shared->key_prefix, "rcptguard:");
  EXPECT_EQ(shared->flush_interval, absl::Milliseconds(250));
  EXPECT_EQ(shared->max_queued_deltas, 200'000u);
  EXPECT_TRUE(shared->password.empty());
}

TEST(ConfigTest, MissingFileIsNotFoundNamingThePath) {
  auto config = LoadConfig("/nonexistent/rcptguard.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("/nonexistent/rcptguard.textproto"));
}

// The largest value of every bounded field is accepted, and the zeros that
// mean "off" or "default" still do.
TEST(ConfigTest, BoundsAreInclusiveAndZerosThatMeanOffAreKept) {
  constexpr char kBase[] = R"(domains { name: "a.com" } insecure_plaintext: true
      )";
  auto config = ParseConfig(std::string(kBase) + R"(
        metrics { max_edge_ids: 10000 }
        limits { max_concurrent_streams: 100000
                 recipients_per_second_per_identity: 10000000
                 rate_burst_seconds: 3600 idle_timeout: "24h"
                 max_connection_age: "24h" max_connection_age_grace: "1h"
                 handshake_timeout: "5m" max_recipients_per_request: 100000 }
        shutdown { grace_ms: 600000 drain_timeout_ms: 600000 }
        harvest { dsn_max_recipients: 1000000 }
        directory { ldif_files: "a" preset: "ad" shard_bits: 16
                    stale_after: "720h" watch_interval: "24h" })",
                            "t", "");
  ASSERT_TRUE(config.ok()) << config.status();
  config = ParseConfig(std::string(kBase) +
                           R"(directory { ldif_files: "a" preset: "ad"
                                          stale_after: "0s"
                                          watch_interval: "0s" }
                              metrics { max_edge_ids: 0 })",
                       "t", "");
  ASSERT_TRUE(config.ok()) << config.status();
}

TEST(ConfigTest, DurationMillisForGrpcClampsInsteadOfWrapping) {
  EXPECT_EQ(DurationMillisForGrpc(absl::Seconds(10)), 10000);
  EXPECT_EQ(DurationMillisForGrpc(absl::Milliseconds(4294967396)),
            std::numeric_limits<int>::max());
  EXPECT_EQ(DurationMillisForGrpc(absl::Hours(600)),
            std::numeric_limits<int>::max());
  EXPECT_EQ(DurationMillisForGrpc(absl::InfiniteDuration()),
            std::numeric_limits<int>::max());
  EXPECT_EQ(DurationMillisForGrpc(absl::Seconds(-5)), 0);
  EXPECT_EQ(DurationMillisForGrpc(-absl::InfiniteDuration()), 0);
  // Every validated value passes unchanged: the largest is 24h.
  EXPECT_EQ(DurationMillisForGrpc(absl::Hours(24)), 86400000);
}

TEST(ConfigTest, NewClientActionReachesTheHarvestRule) {
  auto config =
      ParseConfig(R"(domains { name: "a.com" } insecure_plaintext: true
      directory { ldif_files: "a" preset: "ad" }
      harvest { rules { name: "net" scopes: "v4/24" window: "1h"
                        min_unknown: 20 action: HARVEST_ACTION_TEMPFAIL
                        new_client_action: HARVEST_ACTION_ACCEPT_ALL }
                rules { name: "net-strict" scopes: "v6/64" window: "1h"
                        min_unknown: 20 action: HARVEST_ACTION_TEMPFAIL } })",
                  "t", "");
  ASSERT_TRUE(config.ok()) << config.status();
  auto harvest = service::HarvestConfigFromProto(config->harvest());
  ASSERT_TRUE(harvest.ok()) << harvest.status();
  ASSERT_EQ(harvest->rules.size(), 2u);
  EXPECT_TRUE(harvest->rules[0].new_client_accept_all);
  EXPECT_FALSE(harvest->rules[1].new_client_accept_all);
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
