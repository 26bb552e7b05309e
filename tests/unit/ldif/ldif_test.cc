#include "server/ldif/ldif.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard::ldif {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string SourceDir() {
  if (const char* env = std::getenv("RG_SOURCE_DIR");
      env != nullptr && *env != '\0')
    return env;
  return RG_SOURCE_DIR_FALLBACK;
}

// Reads every record, or the first error.
absl::StatusOr<std::vector<LdifRecord>> ReadAll(
    const std::string& text, const std::string& source = "test.ldif") {
  std::istringstream in(text);
  LdifReader reader(&in, source);
  std::vector<LdifRecord> records;
  while (true) {
    absl::StatusOr<std::optional<LdifRecord>> next = reader.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return records;
    records.push_back(std::move(**next));
  }
}

std::vector<LdifRecord> MustReadAll(const std::string& text) {
  absl::StatusOr<std::vector<LdifRecord>> records = ReadAll(text);
  EXPECT_TRUE(records.ok()) << records.status();
  return records.ok() ? *std::move(records) : std::vector<LdifRecord>();
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<std::vector<LdifRecord>> records = ReadAll(text);
  if (records.ok()) return "no error";
  EXPECT_EQ(records.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(records.status().message());
}

// name;options=value, for compact expectations.
std::vector<std::string> Flatten(const LdifRecord& record) {
  std::vector<std::string> out;
  for (const LdifAttribute& a : record.attributes)
    out.push_back(absl::StrCat(a.name, a.options, "=", a.value));
  return out;
}

TEST(LdifReaderTest, EmptyInputsHaveNoRecords) {
  for (const char* text :
       {"", "\n", "\n\n\r\n", "version: 1\n", "version: 1",
        "# only a comment\n", "version: 1\n\n# comment\n folded\n\n"}) {
    absl::StatusOr<std::vector<LdifRecord>> records = ReadAll(text);
    ASSERT_TRUE(records.ok()) << text << ": " << records.status();
    EXPECT_THAT(*records, IsEmpty()) << text;
  }
}

TEST(LdifReaderTest, ReadsRecordsAndAttributes) {
  std::vector<LdifRecord> records = MustReadAll(
      "version: 1\n"
      "dn: cn=Alice,dc=example,dc=com\n"
      "objectClass: top\n"
      "objectClass: person\n"
      "Mail: alice@example.com\n"
      "cn;lang-en: Alice\n"
      "userCertificate;Binary:: AAEC\n"
      "\n"
      "dn: cn=Bob,dc=example,dc=com\n"
      "mail: bob@example.com\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].dn, "cn=Alice,dc=example,dc=com");
  EXPECT_EQ(records[0].line, 2);
  EXPECT_THAT(
      Flatten(records[0]),
      ElementsAre("objectclass=top", "objectclass=person",
                  "mail=alice@example.com", "cn;lang-en=Alice",
                  std::string("usercertificate;binary=\x00\x01\x02", 26)));
  EXPECT_EQ(records[1].dn, "cn=Bob,dc=example,dc=com");
  EXPECT_EQ(records[1].line, 9);
  EXPECT_THAT(Flatten(records[1]), ElementsAre("mail=bob@example.com"));
}

TEST(LdifReaderTest, AcceptsLdifdeAddRecordsAsContent) {
  // What `ldifde -f` writes: every entry as a change record of type add.
  std::vector<LdifRecord> records = MustReadAll(
      "dn: CN=Alice,DC=example,DC=com\nchangetype: add\n"
      "objectClass: user\nmail: alice@example.com\n\n"
      "dn: CN=Bob,DC=example,DC=com\nchangetype: ADD\nmail: bob@example.com\n");
  ASSERT_EQ(records.size(), 2u);
  ASSERT_EQ(records[0].attributes.size(), 2u);
  EXPECT_EQ(records[0].attributes[0].name, "objectclass");
  EXPECT_EQ(records[1].Values("mail")[0], "bob@example.com");
  // Anything but add, or add after other attributes, is still refused.
  EXPECT_FALSE(ReadAll("dn: x\nmail: a@b.c\nchangetype: add\n").ok());
  EXPECT_FALSE(ReadAll("dn: x\nchangetype: modify\n").ok());
}

TEST(LdifReaderTest, ValueSpacing) {
  std::vector<LdifRecord> records = MustReadAll(
      "dn:cn=a\n"
      "a:value\n"
      "b:    value with  inner spaces\n"
      "c: trailing spaces and tabs \t \n"
      "d:\n"
      "e:   \n"
      "f:: \n"
      "g::    Zm9v  \n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].dn, "cn=a");
  EXPECT_THAT(
      Flatten(records[0]),
      ElementsAre("a=value", "b=value with  inner spaces",
                  "c=trailing spaces and tabs", "d=", "e=", "f=", "g=foo"));
}

TEST(LdifReaderTest, LenientAboutUnsafePlainValues) {
  // RFC 2849 wants these base64-encoded; real exports do not always bother.
  std::vector<LdifRecord> records = MustReadAll(
      "dn: cn=a\n"
      "a: :colon first\n"
      "b: <angle first\n"
      "c: j\xc3\xbcrgen@example.com\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(Flatten(records[0]),
              ElementsAre("a=:colon first", "b=<angle first",
                          "c=j\xc3\xbcrgen@example.com"));
}

TEST(LdifReaderTest, NumericOidAttributeNames) {
  std::vector<LdifRecord> records = MustReadAll(
      "dn: cn=a\n2.5.4.3: a\n0.9.2342.19200300.100.1.3;x-opt: m@x\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(Flatten(records[0]),
              ElementsAre("2.5.4.3=a", "0.9.2342.19200300.100.1.3;x-opt=m@x"));
}

TEST(LdifReaderTest, Base64ValuesAndDn) {
  // "cn=Jürgen Müller,dc=example,dc=com" and "smtp:jürgen.müller@example.com".
  std::vector<LdifRecord> records = MustReadAll(
      "dn:: Y249SsO8cmdlbiBNw7xsbGVyLGRjPWV4YW1wbGUsZGM9Y29t\n"
      "proxyAddresses:: c210cDpqw7xyZ2VuLm3DvGxsZXJAZXhhbXBsZS5jb20=\n"
      "one:: YQ==\n"
      "two:: YWI=\n"
      "empty::\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].dn, "cn=J\xc3\xbcrgen M\xc3\xbcller,dc=example,dc=com");
  EXPECT_THAT(
      Flatten(records[0]),
      ElementsAre("proxyaddresses=smtp:j\xc3\xbcrgen.m\xc3\xbcller@example.com",
                  "one=a", "two=ab", "empty="));
}

TEST(LdifReaderTest, Base64ToleratesNonZeroPadBits) {
  // "YR==" and "YWJ=" are not canonical (pad bits set) but decode
  // unambiguously.
  std::vector<LdifRecord> records = MustReadAll("dn: x\na:: YR==\nb:: YWJ=\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(Flatten(records[0]), ElementsAre("a=a", "b=ab"));
}

TEST(LdifReaderTest, StrictBase64Errors) {
  for (const char* bad : {"Zm9", "Zm9vY", "Zm=v", "Z===", "====", "Zm9v\tYmFy",
                          "Zm9v YmFy", "Zm9-", "Zm9_", "YQ=a", "YQ==YQ=="}) {
    EXPECT_EQ(ErrorOf(absl::StrCat("dn: x\na:: ", bad, "\n")),
              "test.ldif:2: invalid base64 value")
        << bad;
  }
}

TEST(LdifReaderTest, FoldedLines) {
  std::vector<LdifRecord> records = MustReadAll(
      "dn: cn=a long dn that is\n"
      "  folded,dc=example,dc=com\n"
      "description: one\n"
      " two\n"
      "  three\n"
      "mail: a@ex\n"
      " ample.com\n"
      "b64:: Zm9v\n"
      " YmFy\n"
      "cn: x\n"
      " \n"
      "last: y\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].dn, "cn=a long dn that is folded,dc=example,dc=com");
  // " \n" continues "cn: x" with nothing.
  EXPECT_THAT(Flatten(records[0]),
              ElementsAre("description=onetwo three", "mail=a@example.com",
                          "b64=foobar", "cn=x", "last=y"));
}

TEST(LdifReaderTest, FoldingIsByteBasedEvenInsideUtf8) {
  // "ü" is C3 BC; the fold splits it.
  std::vector<LdifRecord> records =
      MustReadAll("dn: x\ncn: J\xc3\n \xbcrgen\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(Flatten(records[0]), ElementsAre("cn=J\xc3\xbcrgen"));
}

TEST(LdifReaderTest, FoldedAttributeName) {
  std::vector<LdifRecord> records =
      MustReadAll("dn: x\nproxyAdd\n resses: SMTP:a@example.com\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(Flatten(records[0]),
              ElementsAre("proxyaddresses=SMTP:a@example.com"));
}

TEST(LdifReaderTest, Comments) {
  std::vector<LdifRecord> records = MustReadAll(
      "# leading comment\n"
      " folded comment line that looks like\n"
      " dn: cn=fake\n"
      "version: 1\n"
      "# between version and records\n"
      "\n"
      "dn: cn=a\n"
      "# inside a record\n"
      " mail: fake@example.com\n"
      "mail: a@example.com\n"
      "#no space after hash\n"
      "\n"
      "# between records\n"
      "dn: cn=b\n"
      "mail: b@example.com\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].dn, "cn=a");
  EXPECT_EQ(records[0].line, 7);
  EXPECT_THAT(Flatten(records[0]), ElementsAre("mail=a@example.com"));
  EXPECT_EQ(records[1].dn, "cn=b");
  EXPECT_EQ(records[1].line, 14);
}

TEST(LdifReaderTest, CrlfAndMixedLineEnds) {
  std::vector<LdifRecord> records = MustReadAll(
      "version: 1\r\n"
      "\r\n"
      "dn: cn=a\r\n"
      "description: folded\r\n"
      "  value\r\n"
      "b64:: Zm9v\r\n"
      "\r\n"
      "\r\n"
      "dn: cn=b\n"
      "mail: b@example.com\r\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].dn, "cn=a");
  EXPECT_THAT(Flatten(records[0]),
              ElementsAre("description=folded value", "b64=foo"));
  EXPECT_EQ(records[1].line, 9);
  EXPECT_THAT(Flatten(records[1]), ElementsAre("mail=b@example.com"));
}

TEST(LdifReaderTest, RecordSeparatorsAndFileEnds) {
  for (const char* text :
       {"dn: a\nx: 1\n\ndn: b\nx: 2", "dn: a\nx: 1\n\n\n\ndn: b\nx: 2\n",
        "\n\ndn: a\nx: 1\n\ndn: b\nx: 2\n\n\n",
        "dn: a\r\nx: 1\r\n\r\ndn: b\r\nx: 2", "dn: a\nx: 1\n\t\ndn: b\nx: 2\n",
        "dn: a\nx: 1\n\n \t \n\ndn: b\nx: 2\r"}) {
    absl::StatusOr<std::vector<LdifRecord>> records = ReadAll(text);
    ASSERT_TRUE(records.ok()) << records.status();
    ASSERT_EQ(records->size(), 2u) << text;
    EXPECT_EQ((*records)[0].dn, "a");
    EXPECT_EQ((*records)[1].dn, "b");
    EXPECT_THAT(Flatten((*records)[1]), ElementsAre("x=2")) << text;
  }
}

TEST(LdifReaderTest, SpacesOnlyLineAfterContentIsAContinuation) {
  // RFC 2849: a line starting with a space continues the previous one, even
  // when it holds nothing else; only where nothing can be continued is such
  // a line taken as blank.
  EXPECT_EQ(ErrorOf("dn: a\nx: 1\n   \ndn: b\n"),
            "test.ldif:4: dn line inside a record (missing blank line between "
            "records?)");
  std::vector<LdifRecord> records = MustReadAll("dn: a\nx: 1\n   \n  2\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(Flatten(records[0]), ElementsAre("x=1   2"));
}

TEST(LdifReaderTest, RecordWithOnlyADn) {
  std::vector<LdifRecord> records = MustReadAll("dn: cn=a\n\ndn:\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].attributes, IsEmpty());
  EXPECT_EQ(records[1].dn, "");
}

TEST(LdifReaderTest, ValuesAndObjectClass) {
  std::vector<LdifRecord> records = MustReadAll(
      "dn: x\nobjectClass: top\nOBJECTCLASS: User\nmail: a@x\nMAIL;lang-de: "
      "b@x\nmailAlternateAddress: c@x\n");
  ASSERT_EQ(records.size(), 1u);
  const LdifRecord& r = records[0];
  EXPECT_THAT(r.Values("Mail"), ElementsAre("a@x", "b@x"));
  EXPECT_THAT(r.Values("mailalternateaddress"), ElementsAre("c@x"));
  EXPECT_THAT(r.Values("mail;lang-de"), IsEmpty());  // names only, no options
  EXPECT_THAT(r.Values("cn"), IsEmpty());
  EXPECT_TRUE(r.HasObjectClass("user"));
  EXPECT_TRUE(r.HasObjectClass("TOP"));
  EXPECT_FALSE(r.HasObjectClass("computer"));
}

TEST(LdifReaderTest, ErrorsAreStickyAndEndIsStable) {
  std::istringstream in("dn: a\n\nbroken\n\ndn: b\n");
  LdifReader reader(&in, "s");
  absl::StatusOr<std::optional<LdifRecord>> first = reader.Next();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->has_value());
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::optional<LdifRecord>> next = reader.Next();
    ASSERT_FALSE(next.ok());
    EXPECT_EQ(next.status().message(), "s:3: line has no ':' separator");
  }

  std::istringstream in2("dn: a\n");
  LdifReader reader2(&in2, "s");
  ASSERT_TRUE(reader2.Next().ok());
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::optional<LdifRecord>> next = reader2.Next();
    ASSERT_TRUE(next.ok());
    EXPECT_FALSE(next->has_value());
  }
}

TEST(LdifReaderTest, ErrorMessages) {
  EXPECT_EQ(ErrorOf("dn: a\nchangetype: modrdn\n"),
            "test.ldif:2: change records are not supported");
  EXPECT_EQ(ErrorOf("dn: a\nChangeType: delete\n"),
            "test.ldif:2: change records are not supported");
  EXPECT_EQ(ErrorOf("dn: a\nphoto:<file:///x\n"),
            "test.ldif:2: URL values are not supported");
  EXPECT_EQ(ErrorOf("dn:< file:///x\n"),
            "test.ldif:1: URL values are not supported");
  EXPECT_EQ(ErrorOf("mail: a@x\n"),
            "test.ldif:1: record does not start with \"dn:\"");
  EXPECT_EQ(ErrorOf("dn: a\n\n\nmail: a@x\n"),
            "test.ldif:4: record does not start with \"dn:\"");
  EXPECT_EQ(ErrorOf("dn: a\nnocolon\n"),
            "test.ldif:2: line has no ':' separator");
  EXPECT_EQ(ErrorOf("dn: a\n:: Zm9v\n"), "test.ldif:2: empty attribute name");
  EXPECT_EQ(ErrorOf("dn: a\n-bad: x\n"),
            "test.ldif:2: invalid attribute description \"-bad\"");
  EXPECT_EQ(ErrorOf("dn: a\nmail;: x\n"),
            "test.ldif:2: invalid attribute description \"mail;\"");
  EXPECT_EQ(ErrorOf("dn: a\n1.2.: x\n"),
            "test.ldif:2: invalid attribute description \"1.2.\"");
  EXPECT_EQ(ErrorOf("dn: a\n\tmail: x\n"),
            "test.ldif:2: invalid attribute description \"\\tmail\"");
  EXPECT_EQ(ErrorOf(absl::StrCat("dn: a\n", std::string(100, 'x'), "!: v\n")),
            absl::StrCat("test.ldif:2: invalid attribute description \"",
                         std::string(64, 'x'), "...\""));
  EXPECT_EQ(ErrorOf(" dn: a\n"),
            "test.ldif:1: continuation line at the start of a record");
  EXPECT_EQ(ErrorOf("dn: a\n\n x\n"),
            "test.ldif:3: continuation line at the start of a record");
  EXPECT_EQ(ErrorOf("dn: a\nx: 1\ndn: b\n"),
            "test.ldif:3: dn line inside a record (missing blank line between "
            "records?)");
  EXPECT_EQ(ErrorOf("version: 2\n"),
            "test.ldif:1: unsupported LDIF version \"2\" (only version 1 is "
            "supported)");
  EXPECT_EQ(ErrorOf("# c\nversion:\n"),
            "test.ldif:2: unsupported LDIF version \"\" (only version 1 is "
            "supported)");
  EXPECT_EQ(ErrorOf("dn: a\n\nversion: 1\n"),
            "test.ldif:3: record does not start with \"dn:\"");
}

TEST(LdifReaderTest, LineLengthLimit) {
  const std::string at_limit =
      std::string(kMaxLdifLineBytes - 3, 'v');  // "a: " + value
  std::vector<LdifRecord> records =
      MustReadAll(absl::StrCat("dn: x\na: ", at_limit, "\r\n"));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].attributes[0].value.size(), at_limit.size());

  EXPECT_EQ(ErrorOf(absl::StrCat("dn: x\na: ", at_limit, "v\n")),
            "test.ldif:2: line longer than 1048576 bytes");
  // No final newline.
  EXPECT_EQ(ErrorOf(absl::StrCat("dn: x\na: ", at_limit, "v")),
            "test.ldif:2: line longer than 1048576 bytes");
  // Far longer: the reader must stop, not buffer it all.
  EXPECT_EQ(ErrorOf(absl::StrCat("dn: x\n\na: ",
                                 std::string(5 * kMaxLdifLineBytes, 'v'))),
            "test.ldif:3: line longer than 1048576 bytes");
  // Over the limit only once unfolded.
  std::string folded = "dn: x\na: ";
  for (int i = 0; i < 20; ++i)
    absl::StrAppend(&folded, std::string(60000, 'v'), "\n ");
  absl::StrAppend(&folded, "end\n");
  EXPECT_EQ(ErrorOf(folded), "test.ldif:2: line longer than 1048576 bytes");
}

TEST(LdifReaderTest, RecordValueCountLimit) {
  std::string text = "dn: x\n\ndn: big\n";
  for (size_t i = 0; i < kMaxLdifRecordValues; ++i) text += "member: m\n";
  absl::StatusOr<std::vector<LdifRecord>> records = ReadAll(text);
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ((*records)[1].attributes.size(), kMaxLdifRecordValues);

  text += "member: one too many\n";
  EXPECT_EQ(ErrorOf(text),
            "test.ldif:3: record has more than 100000 attribute values");
}

TEST(LdifReaderTest, RecordSizeLimit) {
  std::string text = "dn: x\n";
  const std::string line =
      absl::StrCat("p: ", std::string(kMaxLdifLineBytes - 3, 'v'), "\n");
  for (size_t i = 0; i < kMaxLdifRecordBytes / (kMaxLdifLineBytes - 3); ++i)
    text += line;
  absl::StatusOr<std::vector<LdifRecord>> records = ReadAll(text);
  ASSERT_TRUE(records.ok()) << records.status();
  text += line;
  EXPECT_EQ(ErrorOf(text), "test.ldif:1: record larger than 67108864 bytes");
}

// A stream that yields some bytes and then fails as a broken disk would.
class FailingStreamBuf : public std::streambuf {
 public:
  explicit FailingStreamBuf(std::string data) : data_(std::move(data)) {
    setg(data_.data(), data_.data(), data_.data() + data_.size());
  }

 protected:
  int_type underflow() override { throw std::runtime_error("EIO"); }

 private:
  std::string data_;
};

TEST(LdifReaderTest, ReadErrorIsReported) {
  FailingStreamBuf buf("dn: a\nmail: a@example.com\n\ndn: b\n");
  std::istream in(&buf);
  LdifReader reader(&in, "broken");
  absl::StatusOr<std::optional<LdifRecord>> next = reader.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().message(), "broken:1: read error");
}

TEST(LdifReaderTest, ManyRecordsAcrossBufferBoundaries) {
  // Line lengths that do not divide the reader's chunk size, so lines and
  // CRLF pairs straddle refills.
  std::string text = "version: 1\r\n\r\n";
  std::vector<std::string> expected_values;
  for (int i = 0; i < 5000; ++i) {
    std::string value(static_cast<size_t>(i * 37 % 300),
                      static_cast<char>('a' + i % 26));
    expected_values.push_back(value);
    absl::StrAppend(&text, "dn: cn=r", i, "\r\n", "v: ", value, "\r\n",
                    "w: ", i, "\r\n\r\n");
  }
  absl::StatusOr<std::vector<LdifRecord>> records = ReadAll(text);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 5000u);
  int line = 3;
  for (int i = 0; i < 5000; ++i) {
    const LdifRecord& r = (*records)[i];
    EXPECT_EQ(r.dn, absl::StrCat("cn=r", i));
    EXPECT_EQ(r.line, line);
    line += 4;
    ASSERT_EQ(r.attributes.size(), 2u);
    EXPECT_EQ(r.attributes[0].value, expected_values[i]);
    EXPECT_EQ(r.attributes[1].value, absl::StrCat(i));
  }
}

TEST(LdifReaderTest, IsValidAttributeDescription) {
  for (const char* ok :
       {"mail", "Mail", "proxyAddresses", "x-custom", "a1", "mail;binary",
        "cn;lang-en;phonetic", "2.5.4.3", "1.2;x", "my_attr"}) {
    EXPECT_TRUE(IsValidAttributeDescription(ok)) << ok;
  }
  for (const char* bad :
       {"", "1mail", "-mail", "mail;", ";binary", "mail;;x", "ma il",
        "mail:", "1.", ".1", "1..2", "1", "m@il", "mail;bin ary"}) {
    EXPECT_FALSE(IsValidAttributeDescription(bad)) << bad;
  }
}

// One fixture per failure mode, each with its exact error.
TEST(LdifReaderTest, Fixtures) {
  const std::map<std::string, std::string> expected = {
      {"bad_version.ldif",
       "1: unsupported LDIF version \"2\" (only version 1 is supported)"},
      {"base64_bad_char.ldif", "2: invalid base64 value"},
      {"base64_bad_dn.ldif", "1: invalid base64 value"},
      {"base64_bad_length.ldif", "2: invalid base64 value"},
      {"base64_misplaced_padding.ldif", "2: invalid base64 value"},
      {"change_record.ldif", "5: change records are not supported"},
      {"change_record_control.ldif", "2: change records are not supported"},
      {"continuation_at_file_start.ldif",
       "1: continuation line at the start of a record"},
      {"continuation_at_record_start.ldif",
       "4: continuation line at the start of a record"},
      {"crlf_error_line_number.ldif", "9: invalid base64 value"},
      {"dn_inside_record.ldif",
       "3: dn line inside a record (missing blank line between records?)"},
      {"empty_attribute_name.ldif", "2: empty attribute name"},
      {"invalid_attribute_description.ldif",
       "2: invalid attribute description \"mail address\""},
      {"line_without_colon.ldif", "3: line has no ':' separator"},
      {"record_without_dn.ldif", "4: record does not start with \"dn:\""},
      {"url_value.ldif", "3: URL values are not supported"},
      {"version_twice.ldif", "3: record does not start with \"dn:\""},
  };
  const std::filesystem::path dir =
      std::filesystem::path(SourceDir()) / "tests/testdata/ldif";
  std::set<std::string> seen;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".ldif") continue;
    const std::string name = entry.path().filename().string();
    seen.insert(name);
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end())
        << "fixture without an expected error: " << name;
    std::ifstream in(entry.path(), std::ios::binary);
    ASSERT_TRUE(in.is_open()) << entry.path();
    LdifReader reader(&in, name);
    absl::Status status;
    while (true) {
      absl::StatusOr<std::optional<LdifRecord>> next = reader.Next();
      if (!next.ok()) {
        status = next.status();
        break;
      }
      ASSERT_TRUE(next->has_value()) << name << " was read without error";
    }
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(status.message(), absl::StrCat(name, ":", it->second));
  }
  for (const auto& [name, message] : expected)
    EXPECT_TRUE(seen.count(name)) << "missing fixture " << name;
}

}  // namespace
}  // namespace rcptguard::ldif
