#include "server/harvest/ip_prefix.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard::harvest {
namespace {

using ::testing::HasSubstr;

TEST(ParseIpTest, ParsesIpv4) {
  auto ip = ParseIp("192.0.2.77");
  ASSERT_TRUE(ip.has_value());
  EXPECT_EQ(ip->family, IpFamily::kV4);
  EXPECT_EQ(ip->bytes[0], 192);
  EXPECT_EQ(ip->bytes[3], 77);
  EXPECT_EQ(ip->bytes[4], 0);
}

TEST(ParseIpTest, ParsesIpv6) {
  auto ip = ParseIp("2001:db8::1");
  ASSERT_TRUE(ip.has_value());
  EXPECT_EQ(ip->family, IpFamily::kV6);
  EXPECT_EQ(ip->bytes[0], 0x20);
  EXPECT_EQ(ip->bytes[15], 1);
}

TEST(ParseIpTest, Ipv4MappedIpv6IsIpv4) {
  auto mapped = ParseIp("::ffff:192.0.2.77");
  auto plain = ParseIp("192.0.2.77");
  ASSERT_TRUE(mapped.has_value());
  EXPECT_EQ(*mapped, *plain);
  auto hex = ParseIp("::ffff:c000:24d");  // same address in hex groups
  ASSERT_TRUE(hex.has_value());
  EXPECT_EQ(*hex, *plain);
}

TEST(ParseIpTest, Ipv4CompatibleAndNat64StayIpv6) {
  EXPECT_EQ(ParseIp("::192.0.2.1")->family, IpFamily::kV6);
  EXPECT_EQ(ParseIp("64:ff9b::192.0.2.1")->family, IpFamily::kV6);
}

TEST(ParseIpTest, RefusesGarbage) {
  const std::string long_text(10000, '1');
  const std::string with_nul("1.2.3.4\0junk", 12);
  const std::string only_nul(1, '\0');
  for (const std::string& bad :
       {std::string(""), std::string("abc"), std::string("1.2.3.4.5"),
        std::string("::g"), std::string("256.1.1.1"), std::string("01.2.3.4"),
        std::string(" 1.2.3.4"), std::string("1.2.3.4 "),
        std::string("[2001:db8::1]"), std::string("fe80::1%eth0"),
        std::string("192.0.2.0/24"), std::string("1.2.3"), std::string(":::"),
        long_text, with_nul, only_nul, std::string("\xff\xfe")}) {
    EXPECT_FALSE(ParseIp(bad).has_value())
        << "input of " << bad.size() << " bytes";
  }
}

TEST(MaskToTest, MasksHostBits) {
  auto ip = ParseIp("192.0.2.77");
  EXPECT_EQ(FormatPrefixKey(MaskTo(*ip, 24)), "192.0.2.0/24");
  EXPECT_EQ(FormatPrefixKey(MaskTo(*ip, 32)), "192.0.2.77/32");
  EXPECT_EQ(FormatPrefixKey(MaskTo(*ip, 20)), "192.0.0.0/20");
  EXPECT_EQ(FormatPrefixKey(MaskTo(*ip, 99)), "192.0.2.77/32");  // clamped
  auto ip6 = ParseIp("2001:db8:1:2:3:4:5:6");
  EXPECT_EQ(FormatPrefixKey(MaskTo(*ip6, 64)), "2001:db8:1:2::/64");
  EXPECT_EQ(FormatPrefixKey(MaskTo(*ip6, 56)), "2001:db8:1::/56");
  EXPECT_EQ(MaskTo(*ParseIp("192.0.2.1"), 24),
            MaskTo(*ParseIp("192.0.2.254"), 24));
  EXPECT_NE(MaskTo(*ParseIp("192.0.2.1"), 24),
            MaskTo(*ParseIp("192.0.3.1"), 24));
  EXPECT_NE(MaskTo(*ParseIp("192.0.2.0"), 24),
            MaskTo(*ParseIp("192.0.2.0"), 32));
}

TEST(MaskToTest, UnparsableKey) {
  EXPECT_EQ(FormatPrefixKey(PrefixKey::Unparsable()), "unparsable");
  EXPECT_TRUE(PrefixKey::Unparsable().unparsable());
}

TEST(ParseCidrTest, Parses) {
  auto v4 = ParseCidr("10.0.0.0/8");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(FormatPrefixKey(*v4), "10.0.0.0/8");
  auto host = ParseCidr("192.0.2.1");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->prefix_len, 32);
  auto v6 = ParseCidr("2001:db8::/32");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(FormatPrefixKey(*v6), "2001:db8::/32");
  auto mapped = ParseCidr("::ffff:10.0.0.0/104");
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(FormatPrefixKey(*mapped), "10.0.0.0/8");
  auto all = ParseCidr("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(Contains(*all, *ParseIp("203.0.113.9")));
}

TEST(ParseCidrTest, ExactErrors) {
  EXPECT_EQ(ParseCidr("10.0.0.1/8").status().message(),
            "\"10.0.0.1/8\": host bits set (did you mean 10.0.0.0/8?)");
  EXPECT_EQ(ParseCidr("10.0.0.0/33").status().message(),
            "\"10.0.0.0/33\": prefix length must be between 0 and 32");
  EXPECT_EQ(ParseCidr("2001:db8::/129").status().message(),
            "\"2001:db8::/129\": prefix length must be between 0 and 128");
  EXPECT_EQ(ParseCidr("10.0.0.0/").status().message(),
            "\"10.0.0.0/\": prefix length must be between 0 and 32");
  EXPECT_EQ(ParseCidr("10.0.0.0/+8").status().message(),
            "\"10.0.0.0/+8\": prefix length must be between 0 and 32");
  EXPECT_EQ(ParseCidr("nonsense").status().message(),
            "\"nonsense\" is not an IP address or CIDR");
  EXPECT_EQ(ParseCidr("::ffff:10.0.0.0/64").status().message(),
            "\"::ffff:10.0.0.0/64\": an IPv4-mapped network needs a prefix "
            "length of at least 96");
  EXPECT_EQ(ParseCidr(std::string("a\nb")).status().message(),
            "\"a\\nb\" is not an IP address or CIDR");
  EXPECT_THAT(std::string(ParseCidr(std::string(500, 'x')).status().message()),
              HasSubstr("...\" is not"));
}

TEST(ContainsTest, NetworksAndAddresses) {
  auto net = *ParseCidr("192.0.2.0/24");
  EXPECT_TRUE(Contains(net, *ParseIp("192.0.2.200")));
  EXPECT_FALSE(Contains(net, *ParseIp("192.0.3.1")));
  EXPECT_FALSE(Contains(net, *ParseIp("::ffff:192.0.3.1")));
  EXPECT_FALSE(Contains(net, *ParseIp("2001:db8::1")));
  EXPECT_TRUE(Contains(net, MaskTo(*ParseIp("192.0.2.9"), 32)));
  EXPECT_TRUE(Contains(net, net));
  EXPECT_FALSE(Contains(net, MaskTo(*ParseIp("192.0.2.9"), 16)));
  EXPECT_FALSE(Contains(PrefixKey::Unparsable(), PrefixKey::Unparsable()));
}

}  // namespace
}  // namespace rcptguard::harvest
