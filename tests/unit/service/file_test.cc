// common/file.h: hostile files at a path we were told to read. (The
// test lives here because tests/ has no unit/common folder yet.)
#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <istream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/pem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rcptguard {
namespace {

using ::testing::HasSubstr;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rg-file-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)std::system(cmd.c_str());
  }
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::string dir_;
};

TEST_F(FileTest, ReadsARegularFile) {
  const std::string path = Write("a.txt", "hello\n");
  absl::StatusOr<std::string> text = ReadRegularFile("config file", path, 6);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "hello\n");
  text = ReadRegularFile("config file", Write("empty", ""), 0);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "");
}

TEST_F(FileTest, MissingFile) {
  const std::string path = dir_ + "/nope";
  EXPECT_EQ(ReadRegularFile("config file", path, 100).status(),
            absl::NotFoundError("config file " + path +
                                ": cannot open: No such file or directory"));
}

TEST_F(FileTest, FifoIsRefusedAtOnce) {
  const std::string path = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadRegularFile("snapshot", path, 100).status(),
            absl::InvalidArgumentError("snapshot " + path +
                                       ": is a FIFO, not a regular file"));
  EXPECT_EQ(OpenRegularFile("snapshot", path, 100).status().message(),
            "snapshot " + path + ": is a FIFO, not a regular file");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(FileTest, DevZeroIsRefused) {
  EXPECT_EQ(ReadRegularFile("fingerprint key file", "/dev/zero", kMiB).status(),
            absl::InvalidArgumentError(
                "fingerprint key file /dev/zero: is a character device, not a "
                "regular file"));
}

TEST_F(FileTest, DirectoryIsRefused) {
  EXPECT_EQ(ReadRegularFile("LDIF file", dir_, kMiB).status(),
            absl::InvalidArgumentError("LDIF file " + dir_ +
                                       ": is a directory, not a regular file"));
}

TEST_F(FileTest, TooLargeSparseFileIsRefusedBeforeReading) {
  const std::string path = dir_ + "/sparse";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  // 4 GiB of holes: reading it would take seconds and 4 GB of memory.
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(4 * kGiB)), 0);
  ::close(fd);
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadRegularFile("config file", path, kMaxConfigFileBytes).status(),
            absl::InvalidArgumentError(
                absl::StrCat("config file ", path,
                             ": file has 4294967296 bytes, more than "
                             "the 16777216 allowed")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // One byte over the bound is over it.
  EXPECT_EQ(ReadRegularFile("x", Write("b", "12345"), 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ReadRegularFile("x", Write("b", "1234"), 4).ok());
}

TEST_F(FileTest, OpenedFileIsBlockingAndReportsItsSize) {
  const std::string path = Write("c", "abc");
  absl::StatusOr<OpenedFile> file = OpenRegularFile("x", path, 10);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size, 3u);
  EXPECT_EQ(::fcntl(file->fd.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(file->fd.get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST_F(FileTest, StreamStopsAtTheBoundAndSaysSo) {
  const std::string path = Write("s", "line1\nline2\n");
  {
    absl::StatusOr<OpenedFile> file = OpenRegularFile("x", path, 100);
    ASSERT_TRUE(file.ok());
    FileStreamBuf buf(*std::move(file), 100);
    std::istream in(&buf);
    std::string all((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
    EXPECT_EQ(all, "line1\nline2\n");
    EXPECT_FALSE(buf.exceeded());
    EXPECT_EQ(buf.error(), 0);
  }
  {
    // As if the file grew to 12 bytes after it was opened with a bound of 8.
    absl::StatusOr<OpenedFile> file = OpenRegularFile("x", path, 100);
    ASSERT_TRUE(file.ok());
    FileStreamBuf buf(*std::move(file), 8);
    std::istream in(&buf);
    std::string all((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
    EXPECT_EQ(all, "line1\nli");
    EXPECT_TRUE(buf.exceeded());
  }
}

// The PEM reader (TLS files of the server and the client library) goes
// through the same checks; a missing file keeps its established message.
TEST_F(FileTest, PemFiles) {
  const std::string fifo = dir_ + "/ca.pem";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ReadPemFile("tls.client_ca_file", fifo).status(),
            absl::InvalidArgumentError("tls.client_ca_file " + fifo +
                                       ": is a FIFO, not a regular file"));
  EXPECT_EQ(ReadPemFile("tls.cert_file", "/dev/urandom").status().message(),
            "tls.cert_file /dev/urandom: is a character device, not a regular "
            "file");
  EXPECT_EQ(
      ReadPemFile("ca_file", dir_ + "/nope.pem").status(),
      absl::NotFoundError("ca_file: cannot read \"" + dir_ + "/nope.pem\""));
  const std::string pem = Write("ok.pem", "-----BEGIN CERTIFICATE-----\n");
  EXPECT_TRUE(ReadPemFile("ca_file", pem).ok());
}

}  // namespace
}  // namespace rcptguard
