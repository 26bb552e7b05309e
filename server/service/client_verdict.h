// The harvest side of a Validate (validator.h): what harvest detection
// observes of one request, and how the detector's verdict on the client
// reads in the API (ClientVerdict, also used by Admin.ListOffenders).
//
//   harvest::Verdict verdict = ObserveRequest(*detector, request, results);
//   FillClientVerdict(verdict, response->mutable_client());
//
// Thread safety: pure functions apart from the detector, which is
// thread-safe itself. ObserveRequest allocates nothing for requests that
// touch at most four served domains with unknown recipients.
#ifndef RCPTGUARD_SERVER_SERVICE_CLIENT_VERDICT_H_
#define RCPTGUARD_SERVER_SERVICE_CLIENT_VERDICT_H_

#include <cstdint>
#include <string_view>

#include "absl/types/span.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/directory/directory.h"
#include "server/harvest/harvest.h"

namespace rcptguard::service {

// Feeds `request` and its lookup `results` (one per recipient, in order)
// to `detector` and returns its verdict on the client. The SMTP context
// (client IP, authentication, an empty MAIL FROM for DSNs), the
// transaction (TransactionId) and dry_run come from the request; the counts,
// the unknown recipients' fingerprints and the served domains asked about
// from the results.
harvest::Verdict ObserveRequest(
    harvest::Detector& detector, const v1::ValidateRequest& request,
    absl::Span<const directory::LookupResult> results,
    std::string_view edge_identity = {});

// Identifies the SMTP transaction for harvest escalation: a hash of the edge
// (`edge_identity` when not empty, else context.edge_id), the session id
// and the envelope sender; 0 (unknown) without a session id.
uint64_t TransactionId(const v1::SmtpContext& ctx,
                       std::string_view edge_identity);

// The longest ClientVerdict.delay_ms the API ever carries (5 minutes, the
// bound of a rule's max_delay); documented in validation.proto.
inline constexpr uint32_t kMaxDelayMs = 300000;

// The delay cap for `request`: its max_delay_ms when set and smaller than
// kMaxDelayMs, else kMaxDelayMs.
uint32_t DelayCapMs(const v1::ValidateRequest& request);

// Translates a harvest verdict into the API's ClientVerdict; delay_ms is
// capped at `max_delay_ms` (and always at kMaxDelayMs).
void FillClientVerdict(const harvest::Verdict& verdict,
                       v1::ClientVerdict* client,
                       uint32_t max_delay_ms = kMaxDelayMs);

// Why harvest detection could not judge the request with context `ctx`
// whose verdict is `verdict`: NO_CLIENT_IP or UNPARSABLE_CLIENT_IP when the
// detector found no address to count (Exemption::kUnparsableIp),
// UNSPECIFIED otherwise.
v1::HarvestSkip HarvestSkipFor(const harvest::Verdict& verdict,
                               const v1::SmtpContext& ctx);

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_CLIENT_VERDICT_H_
