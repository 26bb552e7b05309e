// SipHash-2-4: the keyed 64-bit hash behind every directory fingerprint.
//
// The directory never stores addresses, only SipHash-2-4 of their normalized
// form under a secret 128-bit key (see DESIGN.md: a stolen snapshot must not
// be a harvest list). The key is kept apart from the snapshot; snapshots
// record only the key's Id() so a loader can tell that a snapshot was built
// under a different key.
//
//   RG_ASSIGN_OR_RETURN(SipKey key, SipKey::FromBytes(secret_16_bytes));
//   uint64_t fp = SipHash24(key, "user@example.com");
//
// This is the algorithm of Aumasson and Bernstein, "SipHash: a fast
// short-input PRF" (2012), byte for byte: the key is read as two
// little-endian 64-bit words and the output equals the reference
// implementation's 8 output bytes read as a little-endian integer.
//
// Thread safety: SipKey is a plain value; SipHash24 is a pure function.
#ifndef RCPTGUARD_SERVER_DIRECTORY_SIPHASH_H_
#define RCPTGUARD_SERVER_DIRECTORY_SIPHASH_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace rcptguard::directory {

// A 128-bit SipHash key.
struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;

  // Reads exactly 16 bytes as in the SipHash paper: k0 from bytes 0..7 and
  // k1 from bytes 8..15, each little-endian. InvalidArgument otherwise.
  static absl::StatusOr<SipKey> FromBytes(std::string_view sixteen_bytes);

  // A fresh key from the kernel's CSPRNG (getrandom), falling back to
  // std::random_device. For tests and for generating a key file once.
  static SipKey Random();

  // The key's public identifier: SipHash-2-4 of "rcptguard key id" under this
  // key. Recorded in snapshots; reveals nothing usable about the key.
  uint64_t Id() const;

  friend bool operator==(const SipKey&, const SipKey&) = default;
};

// SipHash-2-4 of `data` under `key`.
uint64_t SipHash24(const SipKey& key, std::string_view data);

// out[0] = SipHash24(key, a), out[1] = SipHash24(key, b), computed side by
// side: each hash is one long chain of dependent operations, and two
// independent chains keep the CPU busy in about the time of one.
void SipHash24x2(const SipKey& key, std::string_view a, std::string_view b,
                 uint64_t* out);

}  // namespace rcptguard::directory

#endif  // RCPTGUARD_SERVER_DIRECTORY_SIPHASH_H_
