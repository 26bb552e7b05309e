#include "tests/harvest_sim/policy.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/harvest/harvest.h"

namespace rcptguard::harvest_sim {
namespace {

class Rcptguard final : public Policy {
 public:
  explicit Rcptguard(std::unique_ptr<harvest::Detector> detector)
      : detector_(std::move(detector)) {}

  void Answer(const Call& call,
              std::vector<harvest_sim::Answer>* out) override {
    const Transaction& txn = *call.txn;
    const size_t first = call.first;
    const size_t count = call.count;
    harvest::Observation obs;
    obs.client_ip = call.client_ip;
    obs.authenticated = txn.authenticated;
    obs.dsn = txn.mail_from.empty();
    by_domain_.clear();
    fingerprints_.clear();
    domains_.clear();
    for (size_t i = first; i < first + count; ++i) {
      const Recipient& r = txn.recipients[i];
      if (std::find(domains_.begin(), domains_.end(), r.domain) ==
          domains_.end()) {
        domains_.push_back(r.domain);
      }
      if (r.valid) {
        ++obs.valid;
        continue;
      }
      ++obs.unknown;
      fingerprints_.push_back(Fingerprint(r.address));
      bool found = false;
      for (auto& [d, n] : by_domain_) {
        if (d == r.domain) {
          ++n;
          found = true;
        }
      }
      if (!found) by_domain_.emplace_back(r.domain, 1);
    }
    obs.unknown_by_domain = by_domain_;
    obs.unknown_fingerprints = fingerprints_;
    obs.domains = domains_;
    obs.transaction = TransactionId(txn);
    const harvest::Verdict v = detector_->Observe(obs);
    for (size_t i = 0; i < count; ++i) {
      harvest_sim::Answer a;
      switch (v.action) {
        case harvest::Action::kAccept:
          if (v.accept_all) a.reply = Reply::kMasked;
          break;
        case harvest::Action::kTarpit:
          if (i == 0) a.delay = v.delay;
          break;
        case harvest::Action::kTempfail:
          a.reply = Reply::kTempfail;
          break;
        case harvest::Action::kReject:
          a.reply = Reply::kReject;
          break;
      }
      out->push_back(a);
    }
  }

 private:
  std::unique_ptr<harvest::Detector> detector_;
  std::vector<std::pair<int32_t, uint32_t>> by_domain_;
  std::vector<uint64_t> fingerprints_;
  std::vector<int32_t> domains_;
};

class Postfix final : public Policy {
 public:
  void Answer(const Call& call,
              std::vector<harvest_sim::Answer>* out) override {
    const Transaction& txn = *call.txn;
    const size_t first = call.first;
    const size_t count = call.count;
    int& errors = errors_[std::pair(txn.edge, txn.session)];
    for (size_t i = first; i < first + count; ++i) {
      harvest_sim::Answer a;
      if (errors >= kHardLimit) {
        a.reply = Reply::kTempfail;  // 421 4.7.0 Error: too many errors
        a.disconnect = true;
        out->push_back(a);
        return;
      }
      if (!txn.recipients[i].valid) {
        if (errors >= kSoftLimit) a.delay = absl::Seconds(1);
        ++errors;
      }
      out->push_back(a);
    }
  }

 private:
  static constexpr int kSoftLimit = 10;
  static constexpr int kHardLimit = 20;
  absl::flat_hash_map<std::pair<std::string, uint64_t>, int> errors_;
};

class Exchange final : public Policy {
 public:
  void Answer(const Call& call,
              std::vector<harvest_sim::Answer>* out) override {
    const Transaction& txn = *call.txn;
    const size_t first = call.first;
    const size_t count = call.count;
    for (size_t i = first; i < first + count; ++i) {
      harvest_sim::Answer a;
      if (!txn.recipients[i].valid && !txn.authenticated) {
        a.delay = absl::Seconds(5);
      }
      out->push_back(a);
    }
  }
};

class CiscoDhap final : public Policy {
 public:
  void Answer(const Call& call,
              std::vector<harvest_sim::Answer>* out) override {
    const Transaction& txn = *call.txn;
    const size_t first = call.first;
    const size_t count = call.count;
    const absl::Time now = call.now;
    // SMTP AUTH submission is received on a private listener, where DHAP
    // is unlimited by default.
    if (txn.authenticated) {
      out->resize(out->size() + count);
      return;
    }
    Group& g = groups_[absl::StrCat(txn.edge, " ", NetworkOf(call.client_ip))];
    if (now >= g.window_end) g = Group{};
    for (size_t i = first; i < first + count; ++i) {
      harvest_sim::Answer a;
      if (g.invalid >= kMaxInvalidPerHour &&
          (g.blocked || !txn.recipients[i].valid)) {
        g.blocked = true;
        a.reply = Reply::kReject;  // 550 Too many invalid recipients
        a.disconnect = true;
        out->push_back(a);
        return;
      }
      if (!txn.recipients[i].valid) {
        if (g.invalid == 0) g.window_end = now + absl::Hours(1);
        ++g.invalid;
      }
      out->push_back(a);
    }
  }

 private:
  static constexpr int kMaxInvalidPerHour = 25;
  struct Group {
    int invalid = 0;
    bool blocked = false;
    absl::Time window_end = absl::InfiniteFuture();
  };
  absl::flat_hash_map<std::string, Group> groups_;
};

}  // namespace

PolicySpec RcptguardPolicy(std::string name, harvest::HarvestConfig config) {
  return {std::move(name),
          [config = std::move(config)](
              const Clock* clock, const std::vector<std::string>& allowlist)
              -> absl::StatusOr<std::unique_ptr<Policy>> {
            harvest::HarvestConfig c = config;
            c.allowlist.insert(c.allowlist.end(), allowlist.begin(),
                               allowlist.end());
            absl::StatusOr<std::unique_ptr<harvest::Detector>> d =
                harvest::Detector::Create(std::move(c), clock, kDomainCount);
            if (!d.ok()) return d.status();
            return std::make_unique<Rcptguard>(*std::move(d));
          }};
}

PolicySpec PostfixPolicy() {
  return {"Postfix 10/20",
          [](const Clock*, const std::vector<std::string>&)
              -> absl::StatusOr<std::unique_ptr<Policy>> {
            return std::make_unique<Postfix>();
          }};
}

PolicySpec ExchangePolicy() {
  return {"Exchange 5 s",
          [](const Clock*, const std::vector<std::string>&)
              -> absl::StatusOr<std::unique_ptr<Policy>> {
            return std::make_unique<Exchange>();
          }};
}

PolicySpec CiscoDhapPolicy() {
  return {"Cisco DHAP 25/h",
          [](const Clock*, const std::vector<std::string>&)
              -> absl::StatusOr<std::unique_ptr<Policy>> {
            return std::make_unique<CiscoDhap>();
          }};
}

}  // namespace rcptguard::harvest_sim
