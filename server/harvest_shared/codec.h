// How shared harvest state is laid out in Redis (docs/harvest-shared.md):
// key names, the hash fields of one tracked key, and the Lua script that
// applies one replica's delta and answers the key's global state.
//
// One Redis hash per tracked key, "<prefix><width>:k:<key>" (width: the
// ring bucket width in milliseconds, so replicas with other windows never
// mix), with fields
//   v<E> u<E> n<E> m<E>   valid/unknown/not-served/malformed of bucket E
//   q<S> t<S>             null-sender unknown/total of slot S
//   r<S>                  unknown-recipient sketch of slot S, 16 hex digits
//   c<S>                  offending-client sketch of slot S, 8 hex digits
//   p0 p1                 enforced / shadow penalty box "until_ms:action:rule"
//   ls                    last seen, Unix milliseconds
// "<prefix><width>:t:<key>" is a tombstone ForgetClient leaves for a minute.
// A sorted set "<prefix><width>:active" holds the keys with unknown
// recipients or a box, scored by Redis time (µs) of their last change; a sorted
// set "<prefix><width>:forget" holds ForgetClient requests.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_SERVER_HARVEST_SHARED_CODEC_H_
#define RCPTGUARD_SERVER_HARVEST_SHARED_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/harvest/shared_state.h"

namespace rcptguard::harvest_shared {

struct KeyNames {
  std::string base;    // "<prefix><width>:"
  std::string active;  // base + "active"
  std::string forget;  // base + "forget"
  std::string clock;   // base + "clock": the last score given out
  std::string Hash(const harvest::PrefixKey& key) const;
  // Set by ForgetClient for a minute: the Redis time (ms) of the forget.
  std::string Tombstone(const harvest::PrefixKey& key) const;
};
KeyNames MakeKeyNames(std::string_view prefix, absl::Duration bucket_width);

// The Lua script (EVALSHA). KEYS[1] the key's hash, KEYS[2] the active set,
// KEYS[3] the score clock, KEYS[4] the key's tombstone (a delta whose last
// seen time is not after a ForgetClient of the key is not applied).
// ARGV[1] bucket width in ns, ARGV[2] the hash's TTL in ms (the ring span),
// ARGV[3] the active set's TTL in ms, ARGV[4] the key's text, then field,
// value pairs of the delta. Answers {score, field, value, ...}: the key's
// score in the active set (Redis time in microseconds, strictly increasing;
// decimal text), then its state after the delta, fields that left the
// windows removed.
std::string_view ApplyScript();

// The delta's field, value pairs (ARGV[5...]). Zero counts are left out.
std::vector<std::pair<std::string, std::string>> DeltaFields(
    const harvest::SharedKey& delta);

// A key's state from its hash fields (HGETALL, or the script's answer
// without its first element). Unknown or malformed fields are skipped and
// counted in *bad (may be null).
harvest::SharedKey ParseState(
    const harvest::PrefixKey& key,
    const std::vector<std::pair<std::string_view, std::string_view>>& fields,
    size_t* bad);

// The key text of a hash name made by KeyNames::Hash, parsed; error for
// anything else.
absl::StatusOr<harvest::PrefixKey> ParseKeyText(std::string_view text);

}  // namespace rcptguard::harvest_shared

#endif  // RCPTGUARD_SERVER_HARVEST_SHARED_CODEC_H_
