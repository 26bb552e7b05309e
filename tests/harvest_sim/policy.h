// Recipient policies the harvest simulator compares (issue 13): rcptguard's
// Detector, and simulated anchors from other products (Postfix's
// per-session error limits, Exchange's tarpit, Cisco ESA's DHAP). Their
// knobs and defaults are in /work/shared/ANCHORS.md.
//
//   std::unique_ptr<Policy> p = MakeExchangePolicy();
//   std::vector<Answer> answers;
//   p->Answer({.txn = &txn, .client_ip = "192.0.2.7", .first = 0,
//              .count = txn.recipients.size(), .now = now}, &answers);
//
// Contract:
//  - The simulator calls Answer() once per edge call: one recipient at a
//    time for a per-RCPT edge, every remaining recipient at once for a
//    batching edge, in order, at the virtual time the call is made. A policy
//    appends one Answer per recipient it was given, in order, and stops
//    early only after an answer with `disconnect` (the recipients after it
//    are never sent).
//  - What the client learns: a kTruthful answer (250 for valid, 550 5.1.1
//    for unknown) tells valid from unknown; kTempfail (451/421) and kReject
//    (550 5.7.1, Cisco's 550 "Too many invalid recipients") tell nothing.
//  - Answer::delay is how long the client waits for that answer, counted
//    from the previous answer of the call (or the call itself).
//  - The anchors act as the MTA does, per RCPT, whatever the call pattern;
//    their state is per MTA (Transaction::edge), as each product's is.
//
// Thread safety: a Policy is used by one simulation run on one thread.
#ifndef RCPTGUARD_TESTS_HARVEST_SIM_POLICY_H_
#define RCPTGUARD_TESTS_HARVEST_SIM_POLICY_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/harvest/harvest.h"
#include "tests/harvest_sim/traffic.h"

namespace rcptguard::harvest_sim {

// kMasked: accepted (250) whatever the recipient is, so the answer tells
// nothing (rcptguard's ACCEPT_ALL for null-sender traffic); neither a
// deferral nor a refusal for the sender.
enum class Reply : uint8_t { kTruthful, kTempfail, kReject, kMasked };

struct Answer {
  Reply reply = Reply::kTruthful;
  absl::Duration delay = absl::ZeroDuration();
  bool disconnect = false;  // the session ends after this answer
};

// One edge call: recipients [first, first + count) of *txn, from
// client_ip, at `now`.
struct Call {
  const Transaction* txn = nullptr;
  std::string_view client_ip;
  size_t first = 0;
  size_t count = 0;
  absl::Time now;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual void Answer(const Call& call,
                      std::vector<harvest_sim::Answer>* out) = 0;
};

// How a run builds its policy: the world's clock (the simulator moves it
// to each call's time before calling Answer) and the CIDRs the world's
// scenarios want allowlisted (only rcptguard uses them: the anchors have no
// such notion in their defaults).
struct PolicySpec {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<Policy>>(
      const Clock* clock, const std::vector<std::string>& allowlist)>
      make;
};

// rcptguard: a harvest::Detector with `config` (plus the world's
// allowlist), fed one Observation per call as the service does, with
// unknown fingerprints and the transaction id filled. TARPIT: the delay
// before the call's first answer, then truthful answers; TEMPFAIL/REJECT:
// every recipient of the call gets the block reply.
PolicySpec RcptguardPolicy(std::string name, harvest::HarvestConfig config);

// Postfix: per SMTP session (edge, session id), each unknown recipient is
// an error; from the 11th error (smtpd_soft_error_limit 10) each error
// reply is delayed smtpd_error_sleep_time (1 s); once 20 errors were made
// (smtpd_hard_error_limit) the next command gets 421 and the session ends.
// (DATA after exactly 20 errors would get the 421 too; not modelled.)
PolicySpec PostfixPolicy();

// Exchange: every 550 5.1.1 is delayed 5 s (TarpitInterval); authenticated
// sessions are never delayed.
PolicySpec ExchangePolicy();

// Cisco ESA DHAP: per MTA, per remote /24 (IPv6: /64), at most 25 invalid
// recipients per hour window (a window opens at the group's first invalid
// recipient and lasts an hour). The 26th invalid recipient and everything
// after it from that group until the window ends gets 550 "Too many invalid
// recipients" and the connection is dropped. Authenticated submission is
// taken to arrive on a private listener, where DHAP is off by default.
PolicySpec CiscoDhapPolicy();

}  // namespace rcptguard::harvest_sim

#endif  // RCPTGUARD_TESTS_HARVEST_SIM_POLICY_H_
