// The Postfix adapter in this process (rcptguard::postfix::Adapter, as
// rcptguard-postfix runs it) against a real rcptguardd: what the binary
// tests cannot reach from outside. The adapter answers a lookup on the
// thread that receives the answer, under its state lock; an answer that
// arrives after the Adapter is gone must find no owner and be dropped,
// not touch freed memory (run under the ASan build, this is what catches
// it).
#include <signal.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/cpp/client.h"
#include "clients/postfix/adapter.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/e2e/adapter_process.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::Netstring;
using ::rcptguard::testing::RawConnection;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;

std::string Config() {
  return absl::StrCat(R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" }
directory { ldif_files: ")",
                      SourceDir(),
                      R"(/deploy/examples/sample.ldif" preset: "ad" }
shutdown { grace_ms: 0 drain_timeout_ms: 500 }
)");
}

TEST(AdapterInProcessTest, AnswerArrivingAfterTheAdapterIsGoneIsDropped) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(Config()));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();

  client::ClientOptions client_options;
  client_options.target = server.target();
  client_options.deadline = absl::Seconds(3);
  absl::StatusOr<std::unique_ptr<client::Client>> client =
      client::Client::Create(client_options);
  ASSERT_TRUE(client.ok()) << client.status();

  postfix::AdapterOptions options;
  options.policy_listen = "";
  options.socketmap_listen = "inet:127.0.0.1:0";
  options.drain_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<postfix::Adapter>> adapter =
      postfix::Adapter::Create(options, client->get(),
                               std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  absl::Status run_status = absl::UnknownError("not run");
  std::thread loop([&] { run_status = (*adapter)->Run(); });

  RawConnection first((*adapter)->socketmap_port());
  ASSERT_TRUE(first.connected());
  ASSERT_TRUE(first.Send(Netstring("rcpt alice@example.com")));
  EXPECT_EQ(first.ReadUntil(","), Netstring("OK valid"));

  // The server freezes with two lookups out; the adapter drains and goes
  // away while they wait.
  ASSERT_TRUE(server.process().Freeze());
  RawConnection second((*adapter)->socketmap_port());
  ASSERT_TRUE(second.connected());
  ASSERT_TRUE(first.Send(Netstring("rcpt alice@example.com")));
  ASSERT_TRUE(second.Send(Netstring("rcpt nobody@example.com")));
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time stop = absl::Now();
  (*adapter)->Stop();
  loop.join();
  EXPECT_TRUE(run_status.ok()) << run_status;
  // The drain timeout (300 ms) cut both connections without an answer.
  EXPECT_LT(absl::Now() - stop, absl::Seconds(2));
  EXPECT_TRUE(first.ClosedByPeer());
  EXPECT_TRUE(second.ClosedByPeer());
  adapter->reset();

  // Now the answers come, to an adapter that is gone: dropped. The
  // client's destructor waits for every callback to have run.
  server.process().Signal(SIGCONT);
  absl::SleepFor(absl::Milliseconds(300));
  const client::ClientStats stats = (*client)->stats();
  EXPECT_GE(stats.checks, 3u);
  client->reset();
}

}  // namespace
}  // namespace rcptguard
