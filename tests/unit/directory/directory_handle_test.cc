#include "server/directory/directory_handle.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace rcptguard::directory {
namespace {

std::shared_ptr<const Directory> MakeDirectory(const std::string& version) {
  std::vector<DomainPolicy> domains(1);
  domains[0].name = "example.com";
  absl::StatusOr<DirectoryBuilder> builder =
      DirectoryBuilder::Create(SipKey{1, 2}, std::move(domains));
  EXPECT_TRUE(builder.ok());
  builder->AddAddress("user-" + version + "@example.com");
  DirectoryInfo info;
  info.version = version;
  absl::StatusOr<std::shared_ptr<const Directory>> dir =
      std::move(*builder).Build(info);
  EXPECT_TRUE(dir.ok());
  return *dir;
}

TEST(DirectoryHandleTest, NullBeforeFirstLoad) {
  DirectoryHandle handle;
  EXPECT_EQ(handle.Get(), nullptr);
  EXPECT_EQ(handle.Reclaim(), 0u);
  EXPECT_EQ(handle.retired_count(), 0u);
}

TEST(DirectoryHandleTest, ReplacePublishes) {
  DirectoryHandle handle;
  handle.Replace(MakeDirectory("v1"));
  ASSERT_NE(handle.Get(), nullptr);
  EXPECT_EQ(handle.Get()->info().version, "v1");
  EXPECT_EQ(handle.retired_count(), 0u);
  handle.Replace(MakeDirectory("v2"));
  EXPECT_EQ(handle.Get()->info().version, "v2");
  EXPECT_EQ(handle.retired_count(), 1u);
  handle.Replace(nullptr);
  EXPECT_EQ(handle.Get(), nullptr);
  EXPECT_EQ(handle.retired_count(), 2u);
  EXPECT_EQ(handle.Reclaim(), 2u);
  EXPECT_EQ(handle.retired_count(), 0u);
}

TEST(DirectoryHandleTest, ReclaimFreesOnlyUnusedDirectories) {
  DirectoryHandle handle;
  handle.Replace(MakeDirectory("v1"));
  std::shared_ptr<const Directory> reader = handle.Get();  // a batch in flight
  std::weak_ptr<const Directory> v1 = reader;

  handle.Replace(MakeDirectory("v2"));
  std::weak_ptr<const Directory> v2 = handle.Get();
  EXPECT_EQ(reader->info().version, "v1");  // the reader keeps its directory

  // The reader still holds v1: nothing to free.
  EXPECT_EQ(handle.Reclaim(), 0u);
  EXPECT_FALSE(v1.expired());

  // The reader finishes; dropping its reference must not free v1 (the handle
  // keeps it, so the destruction never runs on a request thread).
  reader.reset();
  EXPECT_FALSE(v1.expired());
  EXPECT_EQ(handle.retired_count(), 1u);

  // Reclaim frees it, and leaves the current one alone.
  EXPECT_EQ(handle.Reclaim(), 1u);
  EXPECT_TRUE(v1.expired());
  EXPECT_FALSE(v2.expired());
  EXPECT_EQ(handle.Reclaim(), 0u);
}

TEST(DirectoryHandleTest, ReclaimKeepsHeldAmongSeveral) {
  DirectoryHandle handle;
  std::vector<std::weak_ptr<const Directory>> weak;
  std::shared_ptr<const Directory> held;
  for (int i = 0; i < 5; ++i) {
    handle.Replace(MakeDirectory("v" + std::to_string(i)));
    weak.push_back(handle.Get());
    if (i == 2) held = handle.Get();
  }
  EXPECT_EQ(handle.retired_count(), 4u);
  EXPECT_EQ(handle.Reclaim(), 3u);  // v0, v1, v3
  EXPECT_TRUE(weak[0].expired());
  EXPECT_TRUE(weak[1].expired());
  EXPECT_FALSE(weak[2].expired());
  EXPECT_TRUE(weak[3].expired());
  EXPECT_FALSE(weak[4].expired());
  held.reset();
  EXPECT_EQ(handle.Reclaim(), 1u);
  EXPECT_TRUE(weak[2].expired());
}

TEST(DirectoryHandleTest, ReplaceWhileReadersLoop) {
  constexpr int kReaders = 4;
  constexpr int kVersions = 50;
  std::vector<std::shared_ptr<const Directory>> versions;
  std::set<std::string> published;
  for (int i = 0; i < kVersions; ++i) {
    versions.push_back(MakeDirectory("v" + std::to_string(i)));
    published.insert("v" + std::to_string(i));
  }

  DirectoryHandle handle;
  handle.Replace(versions[0]);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<long> reads{0};
  std::atomic<int> reading{0};  // readers that have completed a read
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      long n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        std::shared_ptr<const Directory> dir = handle.Get();
        if (dir == nullptr || published.count(dir->info().version) == 0) {
          bad.fetch_add(1);
          continue;
        }
        // Use the directory for a "batch".
        const std::string& v = dir->info().version;
        if (dir->Lookup("user-" + v + "@example.com").status !=
            LookupStatus::kValid) {
          bad.fetch_add(1);
        }
        if (++n == 1) reading.fetch_add(1);
      }
      reads.fetch_add(n);
    });
  }

  // Replace only once every reader is reading: on a loaded machine the
  // readers may not be scheduled before the writer is done otherwise.
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (reading.load() < kReaders &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  EXPECT_EQ(reading.load(), kReaders) << "readers never read";
  for (int i = 1; i < kVersions; ++i) {
    handle.Replace(std::move(versions[i]));
    if (i % 7 == 0) handle.Reclaim();
    std::this_thread::yield();
  }
  versions.clear();
  stop.store(true);
  for (std::thread& t : readers) t.join();

  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(handle.Get()->info().version, "v" + std::to_string(kVersions - 1));
  handle.Reclaim();
  EXPECT_EQ(handle.retired_count(), 0u);  // readers are gone
}

}  // namespace
}  // namespace rcptguard::directory
