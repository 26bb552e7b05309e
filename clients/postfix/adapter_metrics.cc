#include "clients/postfix/adapter_metrics.h"

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "prometheus/family.h"

namespace rcptguard::postfix::internal {
namespace {

constexpr std::array<const char*, 2> kProtocolNames = {"policy", "socketmap"};

// Outcome labels (PolicyAnswer / SocketmapAnswer::outcome and the routes
// that need no lookup). Registered up front so the request path never
// creates a series.
constexpr std::array<const char*, 16> kOutcomes = {
    "valid",      "unknown",       "monitor",         "stale",
    "not_served", "malformed",     "client_tempfail", "client_reject",
    "fail_open",  "fail_tempfail", "unspecified",     "not_rcpt",
    "sasl",       "no_recipient",  "bad_request",     "too_long"};
constexpr std::array<const char*, 7> kPolicyActions = {
    "dunno", "reject", "defer", "other", "ok", "notfound", "temp"};
constexpr std::array<const char*, 13> kErrorKinds = {
    "line_too_long",    "too_many_attributes", "request_too_large",
    "no_equals",        "empty_name",          "bad_name",
    "nul_byte",         "duplicate_attribute", "empty_request",
    "bad_request_type", "bad_length",          "leading_zero",
    "length_too_long"};
constexpr std::array<const char*, 4> kMoreErrorKinds = {
    "no_comma", "truncated", "output_overflow", "read_error"};

}  // namespace

const char* ProtocolName(Protocol p) {
  return kProtocolNames[static_cast<int>(p)];
}

std::string_view ActionClass(Protocol p, std::string_view reply) {
  if (p == Protocol::kPolicy) {
    if (reply == "DUNNO") return "dunno";
    if (!reply.empty() && reply[0] == '5') return "reject";
    if (!reply.empty() && reply[0] == '4') return "defer";
    return "other";
  }
  if (reply.rfind("OK", 0) == 0) return "ok";
  if (reply.rfind("NOTFOUND", 0) == 0) return "notfound";
  if (reply.rfind("TEMP", 0) == 0) return "temp";
  return "other";  // PERM
}

absl::StatusOr<std::unique_ptr<AdapterMetrics>> AdapterMetrics::Register(
    prometheus::Registry& registry) {
  auto m = std::make_unique<AdapterMetrics>();
  try {
    auto& requests =
        prometheus::BuildCounter()
            .Name("rcptguard_postfix_requests_total")
            .Help(
                "Requests answered, by protocol and the kind of action "
                "sent (policy: dunno/reject/defer; socketmap: "
                "ok/notfound/temp/other)")
            .Register(registry);
    auto& outcomes = prometheus::BuildCounter()
                         .Name("rcptguard_postfix_outcomes_total")
                         .Help("Requests answered, by protocol and why")
                         .Register(registry);
    auto& errors = prometheus::BuildCounter()
                       .Name("rcptguard_postfix_protocol_errors_total")
                       .Help(
                           "Connections closed for a protocol error, by "
                           "protocol and kind")
                       .Register(registry);
    auto& latency =
        prometheus::BuildHistogram()
            .Name("rcptguard_postfix_upstream_latency_seconds")
            .Help(
                "Time from a request needing rcptguard to its answer "
                "(or the failure policy's), tarpit excluded")
            .Register(registry);
    auto& fail_open = prometheus::BuildCounter()
                          .Name("rcptguard_postfix_fail_open_total")
                          .Help(
                              "Requests answered by the fail_open policy "
                              "because rcptguard did not answer")
                          .Register(registry);
    auto& tarpitted = prometheus::BuildCounter()
                          .Name("rcptguard_postfix_tarpitted_total")
                          .Help("Answers delayed by a TARPIT verdict")
                          .Register(registry);
    auto& tarpit_seconds = prometheus::BuildCounter()
                               .Name("rcptguard_postfix_tarpit_seconds_total")
                               .Help("Seconds of TARPIT delay imposed")
                               .Register(registry);
    auto& connections = prometheus::BuildCounter()
                            .Name("rcptguard_postfix_connections_total")
                            .Help("Connections accepted")
                            .Register(registry);
    auto& idle = prometheus::BuildCounter()
                     .Name("rcptguard_postfix_idle_closed_total")
                     .Help("Connections closed after idle_timeout")
                     .Register(registry);
    auto& open = prometheus::BuildGauge()
                     .Name("rcptguard_postfix_connections_open")
                     .Help("Connections open now")
                     .Register(registry);
    auto& failures = prometheus::BuildCounter()
                         .Name("rcptguard_postfix_upstream_failures_total")
                         .Help("Lookups rcptguard did not answer, by gRPC code")
                         .Register(registry);
    auto& refused = prometheus::BuildCounter()
                        .Name("rcptguard_postfix_connections_refused_total")
                        .Help(
                            "Connections closed at once because "
                            "max_connections were open")
                        .Register(registry);
    auto& in_flight = prometheus::BuildGauge()
                          .Name("rcptguard_postfix_lookups_in_flight")
                          .Help("Lookups waiting for rcptguard")
                          .Register(registry);
    const prometheus::Histogram::BucketBoundaries buckets = {
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
        0.05,   0.1,   0.25,  0.5,   1.0,  2.5};
    for (Protocol proto : {Protocol::kPolicy, Protocol::kSocketmap}) {
      const std::string name = ProtocolName(proto);
      PerProtocol& pp = m->of(proto);
      for (const char* a : kPolicyActions) {
        pp.requests[a] = &requests.Add({{"protocol", name}, {"action", a}});
      }
      for (const char* o : kOutcomes) {
        pp.outcomes[o] = &outcomes.Add({{"protocol", name}, {"outcome", o}});
      }
      for (const char* k : kErrorKinds) {
        pp.errors[k] = &errors.Add({{"protocol", name}, {"kind", k}});
      }
      for (const char* k : kMoreErrorKinds) {
        pp.errors[k] = &errors.Add({{"protocol", name}, {"kind", k}});
      }
      pp.latency = &latency.Add({{"protocol", name}}, buckets);
      pp.fail_open = &fail_open.Add({{"protocol", name}});
      pp.tarpitted = &tarpitted.Add({{"protocol", name}});
      pp.tarpit_seconds = &tarpit_seconds.Add({{"protocol", name}});
      pp.connections = &connections.Add({{"protocol", name}});
      pp.idle_closed = &idle.Add({{"protocol", name}});
      pp.open = &open.Add({{"protocol", name}});
    }
    for (int code = 1; code <= 16; ++code) {
      // Upper case, as rcptguardd's rcptguard_grpc_requests_total{code}.
      const std::string label =
          absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
      m->upstream_failures[label] = &failures.Add({{"code", label}});
    }
    m->refused = &refused.Add({});
    m->in_flight = &in_flight.Add({});
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("registering metrics: ", e.what()));
  }
  return m;
}

}  // namespace rcptguard::postfix::internal
