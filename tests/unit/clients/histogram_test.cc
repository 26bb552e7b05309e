// LatencyHistogram (clients/bench/histogram.h): bucket arithmetic, the
// percentile error bound, merging, and edge values.
#include "clients/bench/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace rcptguard::bench {
namespace {

TEST(HistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.Mean(), 0);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.Percentile(0.999), 0u);
}

TEST(HistogramTest, BucketsAreContiguousAndCoverEveryValue) {
  EXPECT_EQ(LatencyHistogram::BucketLow(0), 0u);
  for (size_t i = 0; i + 1 < LatencyHistogram::kBucketCount; ++i) {
    ASSERT_LE(LatencyHistogram::BucketLow(i), LatencyHistogram::BucketHigh(i))
        << i;
    ASSERT_EQ(LatencyHistogram::BucketHigh(i) + 1,
              LatencyHistogram::BucketLow(i + 1))
        << i;
  }
  EXPECT_EQ(LatencyHistogram::BucketHigh(LatencyHistogram::kBucketCount - 1),
            UINT64_MAX);
  EXPECT_EQ(LatencyHistogram::BucketIndex(UINT64_MAX),
            LatencyHistogram::kBucketCount - 1);
}

TEST(HistogramTest, ValuesLandInTheirBucket) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const size_t b = LatencyHistogram::BucketIndex(v);
    ASSERT_LT(b, LatencyHistogram::kBucketCount);
    ASSERT_LE(LatencyHistogram::BucketLow(b), v);
    ASSERT_GE(LatencyHistogram::BucketHigh(b), v);
    // Width bound: at most 1/64 of the bucket's lower end above 127.
    if (v >= 128) {
      const uint64_t width =
          LatencyHistogram::BucketHigh(b) - LatencyHistogram::BucketLow(b) + 1;
      ASSERT_LE(width * 64, LatencyHistogram::BucketLow(b)) << v;
    }
  }
}

TEST(HistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_EQ(h.Percentile(0.5), 50u);
  EXPECT_EQ(h.Percentile(0.9), 90u);
  EXPECT_EQ(h.Percentile(0.99), 99u);
  EXPECT_EQ(h.Percentile(1.0), 100u);
  EXPECT_EQ(h.Percentile(0.0), 1u);
  EXPECT_DOUBLE_EQ(h.Mean(), 50.5);
}

TEST(HistogramTest, PercentilesWithinTheRelativeErrorBound) {
  // Log-normal-ish latencies in nanoseconds: 50 us to tens of ms.
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> dist(std::log(200000.0), 1.0);
  std::vector<uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = static_cast<uint64_t>(dist(rng));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const size_t rank = static_cast<size_t>(std::ceil(q * values.size()));
    const uint64_t exact = values[rank - 1];
    const uint64_t got = h.Percentile(q);
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(static_cast<double>(got), exact * (1.0 + 1.0 / 64)) << q;
  }
  EXPECT_EQ(h.Percentile(1.0), values.back());
  EXPECT_EQ(h.min(), values.front());
}

TEST(HistogramTest, PercentileNeverExceedsMax) {
  LatencyHistogram h;
  h.Record(1000001);  // the bucket ends above this value
  EXPECT_EQ(h.Percentile(0.5), 1000001u);
  EXPECT_EQ(h.Percentile(0.99), 1000001u);
}

TEST(HistogramTest, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 0; v < 5000; ++v) {
    (v % 3 == 0 ? a : b).Record(v * 37);
    all.Record(v * 37);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.Mean(), all.Mean());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999})
    EXPECT_EQ(a.Percentile(q), all.Percentile(q)) << q;
  LatencyHistogram empty;
  a.Merge(empty);
  EXPECT_EQ(a.count(), all.count());
}

TEST(HistogramTest, RecordNAndClear) {
  LatencyHistogram h;
  h.RecordN(500, 99);
  h.RecordN(100000, 1);
  h.RecordN(7, 0);  // nothing
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 500u);
  EXPECT_LE(h.Percentile(0.99), 500u + 500u / 64);
  EXPECT_EQ(h.Percentile(1.0), 100000u);
  h.Clear();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  h.Record(3);
  EXPECT_EQ(h.min(), 3u);
}

TEST(HistogramTest, ExtremeValues) {
  LatencyHistogram h;
  h.Record(0);
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.Percentile(1.0), UINT64_MAX);
}

}  // namespace
}  // namespace rcptguard::bench
