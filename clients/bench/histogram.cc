#include "clients/bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace rcptguard::bench {

LatencyHistogram::LatencyHistogram() : buckets_(kBucketCount, 0) {}

size_t LatencyHistogram::BucketIndex(uint64_t value) {
  if (value < 2 * kHalfSubBuckets) return static_cast<size_t>(value);
  // msb >= kSubBucketBits; value >> shift lies in [kHalf, 2 * kHalf).
  const int msb = 63 - std::countl_zero(value);
  const int shift = msb - (kSubBucketBits - 1);
  return static_cast<size_t>(shift) * kHalfSubBuckets +
         static_cast<size_t>(value >> shift);
}

uint64_t LatencyHistogram::BucketLow(size_t index) {
  if (index < 2 * kHalfSubBuckets) return index;
  const uint64_t shift = index / kHalfSubBuckets - 1;
  const uint64_t mantissa = index - shift * kHalfSubBuckets;
  return mantissa << shift;
}

uint64_t LatencyHistogram::BucketHigh(size_t index) {
  if (index < 2 * kHalfSubBuckets) return index;
  const uint64_t shift = index / kHalfSubBuckets - 1;
  const uint64_t mantissa = index - shift * kHalfSubBuckets;
  // The last bucket ends at UINT64_MAX; (mantissa + 1) << shift would wrap.
  if (index + 1 == kBucketCount) return UINT64_MAX;
  return ((mantissa + 1) << shift) - 1;
}

void LatencyHistogram::RecordN(uint64_t value, uint64_t n) {
  if (n == 0) return;
  buckets_[BucketIndex(value)] += n;
  count_ += n;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<double>(value) * static_cast<double>(n);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::Clear() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::Mean() const {
  return count_ == 0 ? 0 : sum_ / static_cast<double>(count_);
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank =
      static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(BucketHigh(i), min_, max_);
  }
  return max_;
}

}  // namespace rcptguard::bench
