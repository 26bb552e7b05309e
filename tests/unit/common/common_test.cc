// common/text.h's JSON escaping (the one escaper of the CLI's JSON and the
// log lines), common/log.h's syslog priority prefixes, and common/program.h's
// command-line scanning.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/log.h"
#include "common/program.h"
#include "common/text.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_value, "", "A string flag for the tests.");
ABSL_FLAG(bool, test_switch, false, "A boolean flag for the tests.");

namespace rcptguard {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(JsonQuoteTest, EscapesQuotesControlsAndInvalidUtf8) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\t\x01\x7f"),
            "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\"");
  // Well-formed UTF-8 stays as is; a stray octet becomes its Latin-1
  // character, so the text is valid UTF-8 and valid JSON.
  EXPECT_EQ(JsonQuote("J\xc3\xb6rg"), "\"J\xc3\xb6rg\"");
  EXPECT_EQ(JsonQuote("x\xff\xc3"), "\"x\\u00ff\\u00c3\"");
  // Every single octet gives text a JSON parser accepts.
  for (int b = 0; b < 256; ++b) {
    const std::string text =
        "{\"v\": " + JsonQuote(std::string(1, static_cast<char>(b))) + "}";
    google::protobuf::Struct parsed;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &parsed).ok())
        << b;
  }
}

TEST(JsonQuoteTest, CutsAtTheBound) {
  std::string out;
  AppendJsonEscaped(out, std::string(10, 'a'), 4);
  EXPECT_EQ(out, "aaaa...(10 octets)");
}

// Runs `fn` with stderr sent to a file; returns what it wrote.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  char path[] = "/tmp/rg-log-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  const int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string text;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, n);
  close(fd);
  unlink(path);
  return text;
}

TEST(LogTest, SyslogPrioritiesWhenOn) {
  SetSyslogPrefix(true);
  const std::string text = CaptureStderr([] {
    LogError("e", {{"k", "v"}});
    LogWarning("w");
    LogInfo("i");
  });
  SetSyslogPrefix(false);
  std::vector<std::string> lines;
  for (size_t start = 0, end;
       (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, 3));
  }
  EXPECT_THAT(lines, ElementsAre("<3>", "<4>", "<6>"));
  EXPECT_EQ(SyslogPrefix(LogLevel::kError), "");
  const std::string plain = CaptureStderr([] { LogError("e"); });
  EXPECT_THAT(plain, StartsWith("ts="));
}

TEST(LogTest, JsonLinesStayValidJson) {
  SetLogJson(true);
  const std::string text = CaptureStderr([] {
    LogInfo("ev", {{"peer", "a\xff\"b"}});
  });
  SetLogJson(false);
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(text, &parsed).ok())
      << text;
  EXPECT_EQ(parsed.fields().at("peer").string_value(), "a\xc3\xbf\"b");
}

TEST(ProgramTest, ScansFlagsAndPositionals) {
  std::vector<std::string> args = {"prog",          "check", "--test_value",
                                   "v w",           "a@b",   "--notest_switch",
                                   "-test-value=x", "--",    "--not-a-flag"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  const CommandLine line = ScanCommandLine(argv.size(), argv.data());
  EXPECT_THAT(line.flags,
              ElementsAre("test_value", "test_switch", "test_value"));
  EXPECT_THAT(line.positional, ElementsAre("check", "a@b", "--not-a-flag"));
}

TEST(ProgramTest, HelpRequestsAndVersion) {
  std::vector<std::string> args = {"prog", "x", "--help"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  EXPECT_EQ(FindHelpRequest(argv.size(), argv.data()), HelpRequest::kHelp);
  args[2] = "--version";
  argv[2] = args[2].data();
  EXPECT_EQ(FindHelpRequest(argv.size(), argv.data()), HelpRequest::kVersion);
  EXPECT_THAT(VersionLine("prog"),
              StartsWith("prog " + std::string(ProjectVersion())));
  EXPECT_THAT(DescribeFlags({"test_value"}),
              HasSubstr("--test_value=\"\"\n      A string flag"));
}

}  // namespace
}  // namespace rcptguard
