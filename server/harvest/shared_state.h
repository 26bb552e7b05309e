// What a Detector exchanges with other replicas of rcptguardd: one tracked
// key's window buckets, slots (null-sender counts, distinct sketches) and
// penalty boxes, as plain values. server/harvest_shared carries them through
// Redis (docs/harvest-shared.md); the detector itself does no I/O.
//
//   detector->RecordDeltas([&] { flusher.Wake(); });  // before any Observe
//   std::vector<SharedKey> deltas = detector->TakeDeltas(10000);
//   ... send, receive the global state of those keys ...
//   detector->MergeShared(global);
//
// Meaning of the fields depends on the direction:
//  - a delta (TakeDeltas): what this replica counted since the last call;
//    counts are increments, sketches the bits set, boxes the key's boxes as
//    they are now (only when has_boxes: they changed).
//  - a global state (MergeShared): the sums of every replica's deltas;
//    counts are totals, sketches the union, boxes the strongest.
// Counts are additive and sketches OR-mergeable, so applying deltas in any
// order and more than once for sketches gives the same totals.
//
// Thread safety: plain values.
#ifndef RCPTGUARD_SERVER_HARVEST_SHARED_STATE_H_
#define RCPTGUARD_SERVER_HARVEST_SHARED_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "server/harvest/harvest.h"
#include "server/harvest/ip_prefix.h"

namespace rcptguard::harvest {

// One ring bucket; epoch = floor(unix time / bucket width).
struct SharedBucket {
  int64_t epoch = 0;
  uint32_t valid = 0;
  uint32_t unknown = 0;
  uint32_t not_served = 0;
  uint32_t malformed = 0;
  friend bool operator==(const SharedBucket&, const SharedBucket&) = default;
};

// One slot (kSlotBuckets buckets); epoch = bucket epoch / kSlotBuckets.
struct SharedSlot {
  int64_t epoch = 0;
  uint32_t null_unknown = 0;
  uint32_t null_total = 0;
  uint64_t recipients = 0;  // distinct-unknown-recipient sketch bits
  uint32_t clients = 0;     // distinct-offending-client sketch bits
  friend bool operator==(const SharedSlot&, const SharedSlot&) = default;
};

// A penalty box. until_ms == 0: none. The rule is carried by name, so that
// replicas agree on it whatever the order of their rules.
struct SharedBox {
  int64_t until_ms = 0;
  Action action = Action::kAccept;
  std::string rule;
  friend bool operator==(const SharedBox&, const SharedBox&) = default;
};

struct SharedKey {
  PrefixKey key;
  int64_t last_seen_ms = 0;
  std::vector<SharedBucket> buckets;  // any order, one per epoch
  std::vector<SharedSlot> slots;      // any order, one per epoch
  bool has_boxes = false;
  SharedBox boxes[2];  // enforced, then observe-only (shadow) box
  // Whether the key had unknown recipients or a box (deltas: in this
  // delta): other replicas fetch such keys even if they never saw them.
  bool Suspicious() const;
};

// What MergeShared did (for tests and metrics).
struct MergeStats {
  size_t merged = 0;    // keys folded in
  size_t inserted = 0;  // of which new to this replica
  size_t skipped = 0;   // prefix not tracked here, or nothing live
};

}  // namespace rcptguard::harvest

#endif  // RCPTGUARD_SERVER_HARVEST_SHARED_STATE_H_
