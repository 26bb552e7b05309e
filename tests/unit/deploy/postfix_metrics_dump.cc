// Prints the Prometheus exposition of rcptguard-postfix's metrics as
// registered at start-up (every series exists from the start). The deploy
// test checks that every rcptguard_postfix_* name and label value the alert
// rules and the Grafana dashboard use is in it.
//
// Usage: rg_postfix_metrics_dump > exposition.txt
#include <cstdio>
#include <memory>
#include <string>

#include "clients/postfix/adapter_metrics.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

int main() {
  prometheus::Registry registry;
  auto metrics =
      rcptguard::postfix::internal::AdapterMetrics::Register(registry);
  if (!metrics.ok()) {
    std::fprintf(stderr, "%s\n", metrics.status().ToString().c_str());
    return 1;
  }
  const std::string text =
      prometheus::TextSerializer().Serialize(registry.Collect());
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
