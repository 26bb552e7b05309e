// The request path of RecipientValidation, free of gRPC: checks a
// ValidateRequest against the limits, looks its recipients up in the served
// directory (one directory snapshot per request), and fills the response
// with one verdict per recipient and the SMTP reply for each.
//
// Every non-dry request also feeds harvest detection, and the response
// carries the client's verdict. While a client is under TEMPFAIL or REJECT,
// every recipient gets the client's reply, so that the answers reveal
// nothing about which addresses exist.
//
// Validator composes parts that each have one job: ReplyPolicy
// (reply_policy.h) decides each recipient's reply, ObserveRequest and
// FillClientVerdict (client_verdict.h) consult harvest detection, and
// ValidationMetrics (validation_metrics.h) records the outcome.
//
// Thread safety: Validate() is safe to call concurrently from any number of
// threads; the Validator itself is constant after construction.
#ifndef RCPTGUARD_SERVER_SERVICE_VALIDATOR_H_
#define RCPTGUARD_SERVER_SERVICE_VALIDATOR_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "rcptguard/v1/config.pb.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/directory/directory_handle.h"
#include "server/harvest/harvest.h"
#include "server/metrics/metrics.h"
#include "server/service/client_verdict.h"
#include "server/service/reply_policy.h"
#include "server/service/validation_metrics.h"

namespace rcptguard::service {

class Validator {
 public:
  // `config` is read as ParseConfig fills it in (config.h). `handle`,
  // `detector` and `clock` must outlive the Validator. A null `detector`
  // turns harvest detection off (every client verdict is ACCEPT); a null
  // `metrics` records nothing. `clock` tells a directory's age (staleness).
  Validator(const v1::ServerConfig& config,
            const directory::DirectoryHandle* handle,
            harvest::Detector* detector = nullptr,
            metrics::ServerMetrics* metrics = nullptr,
            const Clock* clock = RealClock::Get());

  // Errors: InvalidArgument for a request over the limits (naming the
  // limit and the offending field), Unavailable when no directory is loaded
  // yet. On error `response` is left unspecified. `edge_identity`, when
  // not empty (the client certificate's identity under mutual TLS),
  // replaces request.context().edge_id in metrics.
  absl::Status Validate(const v1::ValidateRequest& request,
                        v1::ValidateResponse* response,
                        std::string_view edge_identity = {}) const;

  // The served domains, their aliases and modes, from the directory being
  // served (GetServedDomains). Unavailable when none is loaded yet.
  absl::Status ServedDomains(v1::ServedDomains* out) const;

 private:
  // InvalidArgument naming the limit when `request` is over one.
  absl::Status CheckLimits(const v1::ValidateRequest& request) const;

  // Constant after construction.
  const directory::DirectoryHandle* const handle_;
  harvest::Detector* const detector_;  // thread-safe itself; may be null
  const ValidationMetrics metrics_;
  const ReplyPolicy replies_;
  const uint32_t max_recipients_;
  const uint32_t max_address_length_;
  // Directories older than this answer unknown recipients with 450 4.1.1;
  // zero turns that off.
  const absl::Duration stale_after_;
  const Clock* const clock_;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_VALIDATOR_H_
