// The fast path of ParseAddress (NormalizeSimpleAddress in address.h): the
// common printable-ASCII form, normalized in one pass, 16 octets at a time
// with SSE2 where the CPU has it.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/address/address.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/base/attributes.h"
#include "common/bytes.h"
#include "server/address/address_chars.h"

namespace rcptguard::address {
namespace {

// The scalar fast path, for any length up to the limits: one pass over the
// bytes. Returns the normalized length, 0 if the form is not simple.
size_t NormalizeSimpleScalar(std::string_view raw, char* o, size_t* at) {
  // The local part runs to the first '@' (a second one is not atext and
  // fails below); scanned here rather than with find() to stay in one pass.
  size_t split = 0;
  const size_t local_limit = std::min(raw.size(), kMaxLocalPartOctets + 1);
  while (split < local_limit && raw[split] != '@') ++split;
  if (split == 0 || split == local_limit) return 0;
  std::string_view domain = raw.substr(split + 1);
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  if (domain.empty() || domain.size() > kMaxDnsDomainOctets ||
      split + 1 + domain.size() > kMaxAddressOctets) {
    return 0;
  }
  // Local part: dot-atom of ASCII atext.
  char prev = '.';  // so a leading dot fails
  for (size_t i = 0; i < split; ++i) {
    const char c = raw[i];
    if (c == '.') {
      if (prev == '.') return 0;
    } else if (Byte(c) >= 0x80 || !IsAsciiAtext(c)) {
      return 0;
    }
    o[i] = AsciiLower(c);
    prev = c;
  }
  if (prev == '.') return 0;
  o[split] = '@';
  // Domain: LDH labels of 1..63 octets, no leading or trailing '-', none
  // with "--" in third and fourth position (A-labels included: only
  // libidn2 can check those), at least two, the last not all-numeric.
  char* d = o + split + 1;
  size_t label_start = 0;
  size_t labels = 0;
  bool numeric = true;
  for (size_t i = 0; i <= domain.size(); ++i) {
    if (i == domain.size() || domain[i] == '.') {
      const size_t len = i - label_start;
      if (len == 0 || len > 63) return 0;
      if (domain[label_start] == '-' || domain[i - 1] == '-') return 0;
      if (len >= 4 && domain[label_start + 2] == '-' &&
          domain[label_start + 3] == '-') {
        return 0;
      }
      ++labels;
      if (i < domain.size()) {
        d[i] = '.';
        numeric = true;
        label_start = i + 1;
      }
      continue;
    }
    const char c = domain[i];
    if (!IsLdh(c)) return 0;
    numeric = numeric && c >= '0' && c <= '9';
    d[i] = AsciiLower(c);
  }
  if (labels < 2 || numeric) return 0;
  *at = split;
  return split + 1 + domain.size();
}

#if defined(__SSE2__)

// Inputs of up to this many octets take the vector path.
constexpr size_t kVectorOctets = 64;

// Bytes of `v` in [lo, hi] (unsigned), as 0xff.
inline __m128i InRange(__m128i v, uint8_t lo, uint8_t hi) {
  const __m128i shifted =
      _mm_add_epi8(v, _mm_set1_epi8(static_cast<char>(0x80 - lo)));
  return _mm_cmplt_epi8(shifted,
                        _mm_set1_epi8(static_cast<char>(0x80 + (hi - lo + 1))));
}

inline __m128i Eq(__m128i v, char c) {
  return _mm_cmpeq_epi8(v, _mm_set1_epi8(c));
}

inline uint64_t Bits(__m128i m, size_t chunk) {
  return static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(m)))
         << (16 * chunk);
}

// The n < 16 bytes at `p` in the low bytes of a vector, the rest zero,
// read without touching a byte past p + n. (Copying them to a buffer first
// and loading that stalls: the load cannot be forwarded from the copy's
// smaller stores.)
inline __m128i LoadShort(const char* p, size_t n) {
  uint64_t lo = 0;
  uint64_t hi = 0;
  if (n > 8) {
    lo = LoadU64(p);
    hi = LoadU64(p + n - 8) >> (8 * (16 - n));
  } else if (n >= 4) {
    // Two overlapping reads; the overlapping bytes are equal in both.
    lo = LoadU32(p) | (uint64_t{LoadU32(p + n - 4)} << (8 * (n - 4)));
  } else {
    for (size_t i = 0; i < n; ++i) {
      lo |= static_cast<uint64_t>(Byte(p[i])) << (8 * i);
    }
  }
  return _mm_set_epi64x(static_cast<int64_t>(hi), static_cast<int64_t>(lo));
}

// Bit masks of the classes the rules need; bit i stands for byte i.
struct ClassMasks {
  uint64_t at = 0, dot = 0, hyphen = 0, ldh = 0;

  // Adds the 16 bytes of `v`, which are bytes `offset`.. of the input, and
  // stores them lower-cased at o + offset. Chunks may overlap: a byte seen
  // twice yields the same bits and the same output twice.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Add(__m128i v, size_t offset, char* o) {
    const __m128i upper = InRange(v, 'A', 'Z');
    const __m128i hyphen_v = Eq(v, '-');
    const __m128i ldh_v =
        _mm_or_si128(_mm_or_si128(upper, InRange(v, 'a', 'z')),
                     _mm_or_si128(InRange(v, '0', '9'), hyphen_v));
    auto bits = [offset](__m128i m) {
      return static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(m)))
             << offset;
    };
    at |= bits(Eq(v, '@'));
    dot |= bits(Eq(v, '.'));
    hyphen |= bits(hyphen_v);
    ldh |= bits(ldh_v);
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(o + offset),
        _mm_add_epi8(v, _mm_and_si128(upper, _mm_set1_epi8(0x20))));
  }
};

// The same rules as NormalizeSimpleScalar, checked on bit masks built 16
// bytes at a time: no branch per byte, and the lower-casing is one vector
// add.
size_t NormalizeSimpleVector(std::string_view raw, char* o, size_t* at,
                             uint64_t* local_symbols) {
  const size_t n = raw.size();
  const char* p = raw.data();
  ClassMasks m;
  if (n < 16) {
    m.Add(LoadShort(p, n), 0, o);
  } else {
    for (size_t offset = 0; offset + 16 < n; offset += 16) {
      m.Add(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + offset)),
            offset, o);
    }
    // The last 16 bytes (overlapping the chunk before unless n is a
    // multiple of 16).
    m.Add(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - 16)), n - 16,
          o);
  }
  const uint64_t m_at = m.at, m_dot = m.dot, m_hyphen = m.hyphen;
  const uint64_t m_ldh = m.ldh;

  // Exactly one '@', not first; one trailing dot is dropped.
  if (m_at == 0 || (m_at & (m_at - 1)) != 0) return 0;
  const size_t split = static_cast<size_t>(std::countr_zero(m_at));
  const size_t len = n - ((m_dot >> (n - 1)) & 1);
  if (split == 0 || len <= split + 1) return 0;
  const uint64_t all = len == 64 ? ~uint64_t{0} : (uint64_t{1} << len) - 1;
  const uint64_t local = m_at - 1;
  const uint64_t domain = all & ~(local | m_at);
  const uint64_t first_label = m_at << 1;
  const uint64_t last_byte = uint64_t{1} << (len - 1);

  // Local part: dot-atom (no leading, trailing or doubled dot) of atext;
  // the few bytes that are not letters, digits, '-' or '.' are looked up.
  const uint64_t local_dots = m_dot & local;
  if ((local_dots & 1) != 0 || (local_dots & (m_at >> 1)) != 0 ||
      (local_dots & (local_dots >> 1)) != 0) {
    return 0;
  }
  for (uint64_t rest = local & ~(m_ldh | m_dot); rest != 0; rest &= rest - 1) {
    if (!IsAsciiAtext(p[std::countr_zero(rest)])) return 0;
  }
  // Domain: LDH labels, none empty, at least two; no label beginning or
  // ending with '-' or with "--" in third and fourth position. (A label
  // cannot exceed 63 octets in 64 octets of address.)
  const uint64_t dots = m_dot & domain;
  if ((domain & ~(m_ldh | m_dot)) != 0 || dots == 0 ||
      (dots & (first_label | last_byte | (dots >> 1))) != 0) {
    return 0;
  }
  const uint64_t starts = (dots << 1) | first_label;
  const uint64_t ends = (dots >> 1) | last_byte;
  const uint64_t hyphens = m_hyphen & domain;
  if ((hyphens & (starts | ends)) != 0 ||
      ((starts << 3) & hyphens & (hyphens << 1)) != 0) {
    return 0;
  }
  // The top-level label (after the last dot) is not all digits.
  const size_t tld = static_cast<size_t>(64 - std::countl_zero(dots));
  size_t i = tld;
  while (i < len && p[i] >= '0' && p[i] <= '9') ++i;
  if (i == len) return 0;
  *at = split;
  *local_symbols = local & (~m_ldh | m_hyphen);
  return len;
}

#endif  // __SSE2__

}  // namespace

size_t NormalizeSimpleAddress(std::string_view raw, char* out, size_t* at,
                              uint64_t* local_symbols) {
  uint64_t ignored = 0;
  if (local_symbols == nullptr) local_symbols = &ignored;
  *local_symbols = ~uint64_t{0};
  // Anything unusual (blanks, brackets, quotes, source routes, non-ASCII, an
  // "??--" label, any error) is left to ParseAddress. Every check made here
  // is one ParseAddress makes on this form (tests/unit/address and the
  // address fuzz target compare the two).
  if (raw.empty() || raw.size() > kMaxAddressOctets + 1) return 0;
#if defined(__SSE2__)
  if (raw.size() <= kVectorOctets) {
    return NormalizeSimpleVector(raw, out, at, local_symbols);
  }
#endif
  return NormalizeSimpleScalar(raw, out, at);
}

bool NormalizeSimpleAddress(std::string_view raw, std::string* out,
                            size_t* at) {
  char buffer[kSimpleAddressBuffer];
  const size_t len = NormalizeSimpleAddress(raw, buffer, at);
  if (len == 0) return false;
  out->assign(buffer, len);
  return true;
}

}  // namespace rcptguard::address
