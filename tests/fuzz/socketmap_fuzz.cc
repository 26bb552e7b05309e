// libFuzzer target for the socketmap netstring decoder and request parser:
// any byte stream, split at any point, must give payloads within the limit
// or one InvalidArgument "netstring N: ..." error (never a crash or an
// unbounded buffer), and every reply re-encodes to a netstring that decodes
// back to itself.
//
// The first input byte picks the chunk size the stream is fed in.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "clients/postfix/socketmap_protocol.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rcptguard::postfix;
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  constexpr size_t kMax = 1000;
  NetstringDecoder decoder(kMax);
  for (size_t pos = 0; pos < input.size(); pos += chunk) {
    decoder.Append(input.substr(pos, chunk));
    std::string payload;
    for (;;) {
      const NetstringDecoder::Next next = decoder.NextRecord(&payload);
      if (next == NetstringDecoder::Next::kNeedMore) {
        // A complete record is never left waiting; what waits is bounded.
        Check(decoder.buffered() <= kMax + 8 + chunk);
        break;
      }
      if (next == NetstringDecoder::Next::kError) {
        Check(!decoder.error().ok());
        Check(decoder.error_kind() != NetstringError::kNone);
        return 0;
      }
      Check(payload.size() <= kMax);
      absl::StatusOr<SocketmapRequest> request = ParseSocketmapRequest(payload);
      if (request.ok()) {
        Check(!request->name.empty() && !request->key.empty());
        Check(request->name.find(' ') == std::string::npos);
      }
      // Round trip through the encoder.
      NetstringDecoder again(kMax + 1);
      again.Append(EncodeNetstring(payload));
      std::string back;
      Check(again.NextRecord(&back) == NetstringDecoder::Next::kRecord);
      Check(back == payload);
    }
  }
  return 0;
}
