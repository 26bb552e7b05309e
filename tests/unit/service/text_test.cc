#include "common/text.h"

#include <string>

#include "gtest/gtest.h"

namespace rcptguard {
namespace {

TEST(TextTest, Utf8Validity) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("alice@example.com"));
  EXPECT_TRUE(IsValidUtf8("j\xc3\xb6rg@\xe4\xbe\x8b.example"));
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x93\xa7"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("x\xc3"));             // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
}

TEST(TextTest, SafeTextEscapesAndClips) {
  EXPECT_EQ(SafeText("plain"), "plain");
  EXPECT_EQ(SafeText("a\xff"
                     "b"),
            "a\\xffb");
  EXPECT_EQ(SafeText("line\nbreak\x7f"), "line\\x0abreak\\x7f");
  EXPECT_EQ(SafeText("back\\slash"), "back\\\\slash");
  EXPECT_EQ(SafeText("j\xc3\xb6rg"), "j\xc3\xb6rg");
  const std::string san(8192, 'a');
  const std::string clipped = SafeText(san, 128);
  EXPECT_EQ(clipped, std::string(128, 'a') + "...(8192 octets)");
  // A multi-octet character is never cut in half.
  EXPECT_EQ(SafeText("ab\xc3\xb6", 3), "ab...(4 octets)");
  EXPECT_TRUE(IsValidUtf8(SafeText("\xff\xfe\xc3")));
}

}  // namespace
}  // namespace rcptguard
