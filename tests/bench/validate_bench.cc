// The Validate request path in-process (no gRPC): directory lookups plus
// reply building, with harvest detection off and on, at several batch
// sizes. The bar: detection costs under 10% at batch 10.
//
//   build/tests/bench/validate_bench --benchmark_min_time=1
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "rcptguard/v1/config.pb.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/directory/directory.h"
#include "server/directory/directory_handle.h"
#include "server/harvest/harvest.h"
#include "server/service/validation_service.h"
#include "server/service/validator.h"

namespace rcptguard::service {
namespace {

constexpr int kAddresses = 1'000'000;

const directory::DirectoryHandle& Handle() {
  static directory::DirectoryHandle* handle = [] {
    std::vector<directory::DomainPolicy> domains(1);
    domains[0].name = "example.com";
    domains[0].subaddress_delimiters = "+";
    auto builder =
        directory::DirectoryBuilder::Create(directory::SipKey{3, 4}, domains);
    builder->Reserve(kAddresses);
    for (int i = 0; i < kAddresses; ++i) {
      builder->AddAddress(absl::StrCat("user", i, "@example.com"));
    }
    directory::DirectoryInfo info;
    info.version = "bench";
    auto* h = new directory::DirectoryHandle();
    h->Replace(*std::move(*builder).Build(info));
    return h;
  }();
  return *handle;
}

v1::ServerConfig Config() {
  v1::ServerConfig config;
  config.mutable_limits()->set_max_recipients_per_request(1000);
  config.mutable_limits()->set_max_address_length(1024);
  config.mutable_directory()->set_stale_after("24h");
  return config;
}

// Requests from many clients (so harvest state is realistic, not one hot
// key), 90% valid recipients.
std::vector<v1::ValidateRequest> Requests(int batch) {
  std::vector<v1::ValidateRequest> requests(4096);
  for (size_t r = 0; r < requests.size(); ++r) {
    v1::ValidateRequest& req = requests[r];
    req.mutable_context()->set_client_ip(
        absl::StrCat("198.", (r / 256) % 256, ".", r % 256, ".7"));
    req.mutable_context()->set_mail_from("sender@remote.example.net");
    for (int i = 0; i < batch; ++i) {
      const int n = static_cast<int>((r * 131 + i * 7919) % kAddresses);
      req.add_recipients(i % 10 == 9 ? absl::StrCat("nobody", n, "@example.com")
                                     : absl::StrCat("user", n, "@example.com"));
    }
  }
  return requests;
}

void BM_Validate(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const bool detect = state.range(1) != 0;
  v1::ServerConfig config = Config();
  std::unique_ptr<harvest::Detector> detector;
  if (detect) {
    detector = *harvest::Detector::Create(harvest::HarvestConfig::Defaults(),
                                          RealClock::Get(), 1);
  }
  Validator validator(config, &Handle(), detector.get());
  const std::vector<v1::ValidateRequest> requests = Requests(batch);
  v1::ValidateResponse response;
  size_t i = 0;
  for (auto _ : state) {
    response.Clear();
    benchmark::DoNotOptimize(
        validator.Validate(requests[i++ % requests.size()], &response));
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(detect ? "detection on" : "detection off");
}
BENCHMARK(BM_Validate)
    ->ArgNames({"batch", "detect"})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({10, 0})
    ->Args({10, 1})
    ->Args({100, 0})
    ->Args({100, 1});

// p99 latency of Validate (batch 10) while another thread swaps the served
// directory every 5 ms (Replace + Reclaim, freeing a 1 M-address directory
// each time), against the same loop with no swaps. Reported as counters
// p50_us / p99_us / p999_us over every call of the run.
void BM_ValidateLatencyDuringReload(benchmark::State& state) {
  const bool reloading = state.range(0) != 0;
  v1::ServerConfig config = Config();
  // A private handle holding two directories to alternate between.
  directory::DirectoryHandle handle;
  std::shared_ptr<const directory::Directory> a = Handle().Get();
  static std::shared_ptr<const directory::Directory> b = [] {
    std::vector<directory::DomainPolicy> domains(1);
    domains[0].name = "example.com";
    auto builder =
        directory::DirectoryBuilder::Create(directory::SipKey{3, 4}, domains);
    builder->Reserve(kAddresses);
    for (int i = 0; i < kAddresses; ++i) {
      builder->AddAddress(absl::StrCat("user", i, "@example.com"));
    }
    directory::DirectoryInfo info;
    info.version = "bench-b";
    return *std::move(*builder).Build(info);
  }();
  handle.Replace(a);
  Validator validator(config, &handle, nullptr);
  const std::vector<v1::ValidateRequest> requests = Requests(10);

  std::atomic<bool> stop{false};
  std::thread swapper;
  if (reloading) {
    swapper = std::thread([&] {
      bool flip = false;
      while (!stop.load()) {
        handle.Replace(flip ? a : b);
        handle.Reclaim();
        flip = !flip;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  std::vector<int64_t> nanos;
  nanos.reserve(1 << 20);
  v1::ValidateResponse response;
  size_t i = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    response.Clear();
    benchmark::DoNotOptimize(
        validator.Validate(requests[i++ % requests.size()], &response));
    nanos.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count());
  }
  stop.store(true);
  if (swapper.joinable()) swapper.join();
  std::sort(nanos.begin(), nanos.end());
  auto pct = [&](double p) {
    return nanos.empty()
               ? 0.0
               : nanos[std::min(nanos.size() - 1,
                                static_cast<size_t>(p * nanos.size()))] /
                     1000.0;
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["p999_us"] = pct(0.999);
  state.SetLabel(reloading ? "swapping every 5 ms" : "steady");
}
BENCHMARK(BM_ValidateLatencyDuringReload)
    ->ArgName("reloading")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(300000);

// The same over gRPC on loopback: an in-process server with the real
// service class, a synchronous client calling Validate back to back. This
// is the latency an edge sees (minus the network), so it is where the
// detector's share is judged.
void BM_ValidateGrpc(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const bool detect = state.range(1) != 0;
  v1::ServerConfig config = Config();
  std::unique_ptr<harvest::Detector> detector;
  if (detect) {
    detector = *harvest::Detector::Create(harvest::HarvestConfig::Defaults(),
                                          RealClock::Get(), 1);
  }
  Validator validator(config, &Handle(), detector.get());
  RecipientValidationService service(&validator);
  CallQueues queues;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  queues.AddTo(&builder, 1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  queues.Start(
      [&](grpc::ServerCompletionQueue* q) { service.Serve(&queues, q); });
  auto stub = v1::RecipientValidation::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  const std::vector<v1::ValidateRequest> requests = Requests(batch);
  size_t i = 0;
  for (auto _ : state) {
    grpc::ClientContext ctx;
    v1::ValidateResponse response;
    grpc::Status status =
        stub->Validate(&ctx, requests[i++ % requests.size()], &response);
    if (!status.ok()) state.SkipWithError(status.error_message().c_str());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(detect ? "detection on" : "detection off");
  server->Shutdown();
  queues.Shutdown();
}
BENCHMARK(BM_ValidateGrpc)
    ->ArgNames({"batch", "detect"})
    ->Args({10, 0})
    ->Args({10, 1})
    ->UseRealTime();

}  // namespace
}  // namespace rcptguard::service

int main(int argc, char** argv) {
  // As rcptguardd does (server/main.cc).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
