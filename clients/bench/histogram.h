// LatencyHistogram: a fixed-size log-linear histogram of non-negative 64-bit
// values (the load generator records latencies in nanoseconds), with
// percentiles to a bounded relative error, in the manner of HdrHistogram.
//
// Buckets: values below 128 each have their own bucket (exact). Above, every
// power-of-two range [2^k, 2^(k+1)) is split into 64 equal buckets, so a
// bucket's width is at most 1/64 of its lower bound. Percentile(q) returns
// the upper bound of the bucket holding the value of rank ceil(q * count),
// clamped to the largest value recorded: the reported value is never below
// the true one and exceeds it by less than 1/64 (1.6%). The whole uint64
// range fits in kBucketCount buckets (about 30 KB); Record() is a few
// instructions and never allocates.
//
//   LatencyHistogram h;
//   h.Record(absl::ToInt64Nanoseconds(latency));
//   uint64_t p99 = h.Percentile(0.99);
//
// Thread safety: not thread-safe. Give each thread its own histogram and
// Merge() them when the threads are done.
#ifndef RCPTGUARD_CLIENTS_BENCH_HISTOGRAM_H_
#define RCPTGUARD_CLIENTS_BENCH_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rcptguard::bench {

class LatencyHistogram {
 public:
  // Values below 2^kSubBucketBits are exact; above, 2^(kSubBucketBits-1)
  // buckets per power of two.
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kHalfSubBuckets = uint64_t{1}
                                              << (kSubBucketBits - 1);
  // The largest value, 2^64 - 1, lands in the last bucket.
  static constexpr size_t kBucketCount =
      (66 - kSubBucketBits) * kHalfSubBuckets;

  LatencyHistogram();

  void Record(uint64_t value) { RecordN(value, 1); }
  void RecordN(uint64_t value, uint64_t n);
  // Adds every value recorded in `other`.
  void Merge(const LatencyHistogram& other);
  void Clear();

  uint64_t count() const { return count_; }
  // 0 when empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double Mean() const;

  // The value at quantile q in [0, 1] (0.5 = median, 1 = max), as described
  // in the file comment; 0 when empty. q outside [0, 1] is clamped.
  uint64_t Percentile(double q) const;

  // Bucket arithmetic, exposed for tests.
  static size_t BucketIndex(uint64_t value);
  // Smallest and largest value that land in bucket `index`.
  static uint64_t BucketLow(size_t index);
  static uint64_t BucketHigh(size_t index);

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  // Sum of values, as double: a mean, not an exact total.
  double sum_ = 0;
};

}  // namespace rcptguard::bench

#endif  // RCPTGUARD_CLIENTS_BENCH_HISTOGRAM_H_
