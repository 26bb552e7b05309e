#include "server/harvest_shared/codec.h"

#include <charconv>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "server/harvest/ip_prefix.h"

namespace rcptguard::harvest_shared {
namespace {

using harvest::SharedBox;
using harvest::SharedBucket;
using harvest::SharedKey;
using harvest::SharedSlot;

template <typename T>
bool ParseNum(std::string_view text, T* out, int base = 10) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out, base);
  return ec == std::errc() && ptr == end;
}

std::string Hex(uint64_t v, int digits) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%0*llx", digits,
                static_cast<unsigned long long>(v));
  return std::string(buf, digits);
}

SharedBucket& BucketOf(SharedKey& k, int64_t epoch) {
  for (SharedBucket& b : k.buckets) {
    if (b.epoch == epoch) return b;
  }
  SharedBucket& b = k.buckets.emplace_back();
  b.epoch = epoch;
  return b;
}

SharedSlot& SlotOf(SharedKey& k, int64_t epoch) {
  for (SharedSlot& s : k.slots) {
    if (s.epoch == epoch) return s;
  }
  SharedSlot& s = k.slots.emplace_back();
  s.epoch = epoch;
  return s;
}

std::string BoxText(const SharedBox& box) {
  return absl::StrCat(box.until_ms, ":", static_cast<int>(box.action), ":",
                      box.rule);
}

bool ParseBox(std::string_view text, SharedBox* box) {
  const size_t a = text.find(':');
  if (a == std::string_view::npos) return false;
  const size_t b = text.find(':', a + 1);
  if (b == std::string_view::npos) return false;
  int action = 0;
  if (!ParseNum(text.substr(0, a), &box->until_ms) ||
      !ParseNum(text.substr(a + 1, b - a - 1), &action) || action < 0 ||
      action > 3) {
    return false;
  }
  box->action = static_cast<harvest::Action>(action);
  box->rule = std::string(text.substr(b + 1));
  return true;
}

// Counts above this are someone else's bug; the detector saturates lower.
constexpr uint64_t kMaxCount = 1u << 30;

}  // namespace

std::string KeyNames::Hash(const harvest::PrefixKey& key) const {
  return absl::StrCat(base, "k:", harvest::FormatPrefixKey(key));
}

std::string KeyNames::Tombstone(const harvest::PrefixKey& key) const {
  return absl::StrCat(base, "t:", harvest::FormatPrefixKey(key));
}

KeyNames MakeKeyNames(std::string_view prefix, absl::Duration bucket_width) {
  KeyNames n;
  n.base = absl::StrCat(ToAbsl(prefix), absl::ToInt64Milliseconds(bucket_width),
                        ":");
  n.active = n.base + "active";
  n.forget = n.base + "forget";
  n.clock = n.base + "clock";
  return n;
}

std::string_view ApplyScript() {
  // Redis 7 runs scripts with effects replication, so TIME is allowed and
  // every replica's changes are scored by the one Redis clock.
  static constexpr std::string_view kScript = R"lua(
local h = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucket_ns = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local span = ttl
local function orhex(a, b)
  local out = ''
  for i = 1, #b, 8 do
    local x = tonumber(string.sub(a, i, i + 7), 16) or 0
    local y = tonumber(string.sub(b, i, i + 7), 16) or 0
    out = out .. bit.tohex(bit.bor(x, y), 8)
  end
  return out
end
local function box(v)
  local u, a = string.match(v, '^(%d+):(%d+):')
  return tonumber(u) or 0, tonumber(a) or 0
end
-- A key forgotten (ForgetClient) takes no delta of what was seen before
-- the forget: other replicas may flush such deltas up to an interval later.
local skip = false
local tomb = redis.call('GET', KEYS[4])
if tomb then
  skip = true
  for i = 5, #ARGV, 2 do
    if ARGV[i] == 'ls' and tonumber(ARGV[i + 1]) > tonumber(tomb) then
      skip = false
    end
  end
end
-- While the tombstone stands, a delta seen after the forget brings its
-- counts but no box: a replica that has not yet learned of the forget
-- extends its old box on the next probe (ls after the forget) and would
-- put it back. A box comes back from counts, on each replica.
local hot = false
for i = 5, #ARGV, 2 do
  if skip then break end
  local f, v = ARGV[i], ARGV[i + 1]
  local c = string.sub(f, 1, 1)
  if c == 'p' and tomb then c = '-' end
  if c == 'u' or c == 'q' or c == 'p' then hot = true end
  if c == '-' then
    -- dropped (above)
  elseif c == 'r' or c == 'c' then
    local old = redis.call('HGET', h, f)
    if old then v = orhex(old, v) end
    redis.call('HSET', h, f, v)
  elseif c == 'p' then
    local old = redis.call('HGET', h, f)
    local put = true
    if old then
      local ou, oa = box(old)
      local nu, na = box(v)
      if ou > now and (oa > na or (oa == na and ou >= nu)) then put = false end
    end
    if put then redis.call('HSET', h, f, v) end
  elseif f == 'ls' then
    local old = tonumber(redis.call('HGET', h, f) or '0') or 0
    if tonumber(v) > old then redis.call('HSET', h, f, v) end
  else
    redis.call('HINCRBY', h, f, v)
  end
end
local all = redis.call('HGETALL', h)
local oldest = math.floor(now * 1000000 / bucket_ns) - 60
local oldest_slot = math.floor(oldest / 10)
local suspicious = false
local out = {now}
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  local c = string.sub(f, 1, 1)
  local drop = false
  if c == 'p' then
    local u = box(v)
    if u <= now then
      drop = true
    else
      suspicious = true
      if u - now > ttl then ttl = u - now end
    end
  elseif f ~= 'ls' then
    local e = tonumber(string.sub(f, 2)) or 0
    if c == 'v' or c == 'u' or c == 'n' or c == 'm' then
      drop = e < oldest
    else
      drop = e < oldest_slot
    end
    if not drop and (c == 'u' or c == 'q') and v ~= '0' then
      suspicious = true
    end
  end
  if drop then
    redis.call('HDEL', h, f)
  else
    out[#out + 1] = f
    out[#out + 1] = v
  end
end
if #out == 1 then
  redis.call('DEL', h)
else
  redis.call('PEXPIRE', h, ttl)
end
local score = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Only a change a rule may fire on (unknown recipients, a box) makes other
-- replicas fetch the key; valid-only traffic reaches them with the next
-- such change, or the next write of their own.
local listed = suspicious and redis.call('ZSCORE', KEYS[2], ARGV[4])
if listed and not hot then
  score = tonumber(listed)
elseif suspicious then
  -- Scores are Redis time in microseconds made strictly increasing, so a
  -- replica that saw a key at score s knows any other change is newer.
  local last = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
  if score <= last then score = last + 1 end
  local keep = tonumber(ARGV[3])
  if ttl > keep then keep = ttl end
  redis.call('SET', KEYS[3], string.format('%d', score), 'PX', keep)
  redis.call('ZADD', KEYS[2], string.format('%d', score), ARGV[4])
  if redis.call('PTTL', KEYS[2]) < keep then
    redis.call('PEXPIRE', KEYS[2], keep)
  end
end
out[1] = string.format('%d', score)
return out
)lua";
  return kScript;
}

std::vector<std::pair<std::string, std::string>> DeltaFields(
    const SharedKey& delta) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const SharedBucket& b : delta.buckets) {
    const std::pair<char, uint32_t> counts[] = {{'v', b.valid},
                                                {'u', b.unknown},
                                                {'n', b.not_served},
                                                {'m', b.malformed}};
    for (const auto& [c, n] : counts) {
      if (n != 0)
        out.emplace_back(absl::StrCat(std::string(1, c), b.epoch),
                         absl::StrCat(n));
    }
  }
  for (const SharedSlot& s : delta.slots) {
    if (s.null_unknown != 0) {
      out.emplace_back(absl::StrCat("q", s.epoch),
                       absl::StrCat(s.null_unknown));
    }
    if (s.null_total != 0) {
      out.emplace_back(absl::StrCat("t", s.epoch), absl::StrCat(s.null_total));
    }
    if (s.recipients != 0) {
      out.emplace_back(absl::StrCat("r", s.epoch), Hex(s.recipients, 16));
    }
    if (s.clients != 0) {
      out.emplace_back(absl::StrCat("c", s.epoch), Hex(s.clients, 8));
    }
  }
  if (delta.has_boxes) {
    for (int m = 0; m < 2; ++m) {
      if (delta.boxes[m].until_ms > 0) {
        out.emplace_back(absl::StrCat("p", m), BoxText(delta.boxes[m]));
      }
    }
  }
  if (delta.last_seen_ms > 0) {
    out.emplace_back("ls", absl::StrCat(delta.last_seen_ms));
  }
  return out;
}

SharedKey ParseState(
    const harvest::PrefixKey& key,
    const std::vector<std::pair<std::string_view, std::string_view>>& fields,
    size_t* bad) {
  SharedKey k;
  k.key = key;
  size_t errors = 0;
  for (const auto& [f, v] : fields) {
    if (f.empty()) {
      ++errors;
      continue;
    }
    if (f == "ls") {
      if (!ParseNum(v, &k.last_seen_ms)) ++errors;
      continue;
    }
    if (f == "p0" || f == "p1") {
      SharedBox box;
      if (!ParseBox(v, &box)) {
        ++errors;
        continue;
      }
      k.boxes[f[1] - '0'] = std::move(box);
      k.has_boxes = true;
      continue;
    }
    int64_t epoch = 0;
    if (!ParseNum(f.substr(1), &epoch)) {
      ++errors;
      continue;
    }
    const char c = f[0];
    if (c == 'r' || c == 'c') {
      uint64_t bits = 0;
      if (v.size() != (c == 'r' ? 16u : 8u) || !ParseNum(v, &bits, 16)) {
        ++errors;
        continue;
      }
      SharedSlot& s = SlotOf(k, epoch);
      if (c == 'r') {
        s.recipients |= bits;
      } else {
        s.clients |= static_cast<uint32_t>(bits);
      }
      continue;
    }
    uint64_t n = 0;
    if (!ParseNum(v, &n) || n > kMaxCount) {
      ++errors;
      continue;
    }
    const uint32_t n32 = static_cast<uint32_t>(n);
    switch (c) {
      case 'v':
        BucketOf(k, epoch).valid = n32;
        break;
      case 'u':
        BucketOf(k, epoch).unknown = n32;
        break;
      case 'n':
        BucketOf(k, epoch).not_served = n32;
        break;
      case 'm':
        BucketOf(k, epoch).malformed = n32;
        break;
      case 'q':
        SlotOf(k, epoch).null_unknown = n32;
        break;
      case 't':
        SlotOf(k, epoch).null_total = n32;
        break;
      default:
        ++errors;
    }
  }
  if (bad != nullptr) *bad += errors;
  return k;
}

absl::StatusOr<harvest::PrefixKey> ParseKeyText(std::string_view text) {
  if (text.find('/') == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shared key \"", ToAbsl(text.substr(0, 64)), "\": no prefix"));
  }
  return harvest::ParseCidr(text);
}

}  // namespace rcptguard::harvest_shared
