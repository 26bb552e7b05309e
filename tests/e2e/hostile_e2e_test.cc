// End-to-end regressions for hostile input on the wire (issue 19): bytes
// that are not UTF-8 from the remote SMTP client, requests that are not
// valid protobuf, streams that never read their answers, and the health
// port's services. Each test starts the real rcptguardd on the sample
// directory; every load is bounded in count and time and on 127.0.0.1.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/adapter_process.h"
#include "tests/e2e/raw_call.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/slapd.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::AdapterProcess;
using ::rcptguard::testing::Netstring;
using ::rcptguard::testing::RawConnection;
using ::rcptguard::testing::RawUnaryCall;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::testing::HasSubstr;

constexpr char kValidate[] = "/rcptguard.v1.RecipientValidation/Validate";

std::string Config(const std::string& extra = "") {
  return absl::StrCat(
      R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" }
directory { ldif_files: ")",
      SourceDir(),
      R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
)",
      extra);
}

void StartServer(ServerProcess& server, const std::string& extra = "") {
  ASSERT_NO_FATAL_FAILURE(server.Start(Config(extra)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
}

// A protobuf length-delimited field.
std::string Field(int number, const std::string& value) {
  std::string out;
  out.push_back(static_cast<char>((number << 3) | 2));
  size_t n = value.size();
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7F) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  return out + value;
}

// The remote client's text (HELO, MAIL FROM, RCPT TO) reaches the server as
// bytes: octets that are not UTF-8 never fail the request, and a recipient
// made of them is answered MALFORMED while the others get true answers.
TEST(HostileE2eTest, InvalidUtf8FromTheSmtpClientNeverFailsTheRequest) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartServer(server));
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  v1::ValidateRequest request;
  request.mutable_context()->set_client_ip("203.0.113.99");
  request.mutable_context()->set_helo("\xff");
  request.mutable_context()->set_mail_from("x\xff@b.example");
  request.add_recipients("nobody@example.com");
  request.add_recipients("al\xffice@example.com");
  request.add_recipients("alice@example.com");
  grpc::ClientContext ctx;
  v1::ValidateResponse response;
  grpc::Status status = stub->Validate(&ctx, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
  ASSERT_EQ(response.verdicts_size(), 3);
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_UNKNOWN);
  EXPECT_EQ(response.verdicts(0).reply().code(), 550u);
  EXPECT_EQ(response.verdicts(1).status(), v1::RECIPIENT_STATUS_MALFORMED);
  EXPECT_EQ(response.verdicts(1).reply().code(), 501u);
  EXPECT_EQ(response.verdicts(2).status(), v1::RECIPIENT_STATUS_VALID);
}

// A request that is not a valid message is answered INVALID_ARGUMENT naming
// the field, not UNIMPLEMENTED; the log gets a few rate-limited lines, not
// one per request.
TEST(HostileE2eTest, MalformedProtobufGetsInvalidArgumentNamingTheField) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartServer(server));
  std::string out;
  // context { session_id: "\xff" }: a string field must be UTF-8.
  const std::string bad_session =
      Field(2, Field(4, "\xff")) + Field(3, "alice@example.com");
  grpc::Status s = RawUnaryCall(server.channel(), kValidate, bad_session, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("context.session_id: not valid UTF-8"));
  // A varint cut short.
  s = RawUnaryCall(server.channel(), kValidate, std::string("\x08\xff", 2),
                   &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("request_id: truncated"));
  // A length running past the end.
  s = RawUnaryCall(server.channel(), kValidate,
                   std::string("\x1a\x40"
                               "ab",
                               4),
                   &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("runs past the end"));
  // A well-formed raw request still works.
  s = RawUnaryCall(server.channel(), kValidate, Field(3, "alice@example.com"),
                   &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::ValidateResponse response;
  ASSERT_TRUE(response.ParseFromString(out));
  ASSERT_EQ(response.verdicts_size(), 1);
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);

  for (int i = 0; i < 300; ++i) {
    s = RawUnaryCall(server.channel(), kValidate, bad_session, &out);
    ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  const std::string log = server.log();
  const auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = log.find(what); at != std::string::npos;
         at = log.find(what, at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_LE(count("request_malformed"), 4u) << log;
  EXPECT_LE(count("[libprotobuf"), 0u) << log;
  EXPECT_LE(count("event=protobuf"), 4u) << log;
}

TEST(HostileE2eTest, MalformedStreamMessageEndsTheStreamNamingIt) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartServer(server));
  grpc::GenericStub stub(server.channel());
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto call = stub.PrepareCall(
      &ctx, "/rcptguard.v1.RecipientValidation/ValidateStream", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  const auto write = [&](const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    return cq.Next(&tag, &ok) && ok;
  };
  ASSERT_TRUE(
      write(std::string("\x08\x07", 2) + Field(3, "alice@example.com")));
  grpc::ByteBuffer answer;
  call->Read(&answer, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  v1::ValidateResponse response;
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(answer.Dump(&slices).ok());
  std::string flat;
  for (auto& s : slices)
    flat.append(reinterpret_cast<const char*>(s.begin()), s.size());
  ASSERT_TRUE(response.ParseFromString(flat));
  EXPECT_EQ(response.request_id(), 7u);
  ASSERT_TRUE(write(Field(2, Field(1, "\xc3"))));
  call->WritesDone(reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(5)) {
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("message 2 of the stream: not a valid "
                        "rcptguard.v1.ValidateRequest: context.client_ip: "
                        "not valid UTF-8"));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// The adapter passes what Postfix sent; a policy request with a raw 0xFF in
// HELO or sender is still checked, and one with 0xFF in the recipient is
// answered 501, never DUNNO (fail-open).
TEST(HostileE2eTest, PolicyRequestWithInvalidUtf8IsStillChecked) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartServer(server));
  AdapterProcess adapter;
  ASSERT_NO_FATAL_FAILURE(adapter.Start(server.target(), "fail_open"));
  RawConnection policy(adapter.policy_port());
  ASSERT_TRUE(policy.connected());
  const auto ask = [&](const std::string& helo, const std::string& sender,
                       const std::string& rcpt) {
    EXPECT_TRUE(policy.Send(
        absl::StrCat("request=smtpd_access_policy\nprotocol_state=RCPT\n"
                     "client_address=203.0.113.99\nhelo_name=",
                     helo, "\nsender=", sender, "\nrecipient=", rcpt, "\n\n")));
    return policy.ReadUntil("\n\n");
  };
  EXPECT_EQ(ask("\xff", "a@b.c", "nobody@example.com"),
            "action=550 5.1.1 User unknown\n\n")
      << adapter.log();
  EXPECT_EQ(ask("x.example", "x\xff@b.example", "nobody@example.com"),
            "action=550 5.1.1 User unknown\n\n");
  EXPECT_EQ(ask("x.example", "x\xff@b.example", "alice@example.com"),
            "action=DUNNO\n\n");
  EXPECT_EQ(ask("x.example", "a@b.c", "al\xffice@example.com"),
            "action=501 5.1.3 Bad recipient address syntax\n\n");
}

// Socketmap lookups are merged into batches: one bad key among hundreds of
// good ones is answered on its own, and every other key gets its true
// answer (before, 694 of 900 were answered "OK fail-open").
TEST(HostileE2eTest, OneBadSocketmapKeyDoesNotPoisonItsBatch) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartServer(server));
  AdapterProcess adapter;
  ASSERT_NO_FATAL_FAILURE(adapter.Start(server.target(), "fail_open"));
  constexpr int kConnections = 30;
  constexpr int kPerConnection = 30;
  std::vector<std::unique_ptr<RawConnection>> connections;
  for (int c = 0; c < kConnections; ++c) {
    connections.push_back(
        std::make_unique<RawConnection>(adapter.socketmap_port()));
    ASSERT_TRUE(connections.back()->connected());
  }
  // Every connection sends all its keys at once (pipelined), so that the
  // adapter has many lookups in flight to merge; connection 0 starts with
  // the bad key.
  for (int c = 0; c < kConnections; ++c) {
    std::string burst;
    for (int i = 0; i < kPerConnection; ++i) {
      const bool bad = c == 0 && i == 0;
      const bool valid = (c + i) % 2 == 0;
      burst +=
          Netstring(bad     ? std::string("rcpt x\xff\xfe@example.com")
                    : valid ? std::string("rcpt alice@example.com")
                            : absl::StrCat("rcpt nobody", i, "@example.com"));
    }
    ASSERT_TRUE(connections[c]->Send(burst));
  }
  int true_answers = 0;
  for (int c = 0; c < kConnections; ++c) {
    for (int i = 0; i < kPerConnection; ++i) {
      const std::string answer = connections[c]->ReadUntil(",");
      if (c == 0 && i == 0) {
        EXPECT_EQ(answer, Netstring("NOTFOUND ")) << adapter.log();
        continue;
      }
      const bool valid = (c + i) % 2 == 0;
      EXPECT_EQ(answer, Netstring(valid ? "OK valid" : "NOTFOUND "))
          << "connection " << c << " key " << i;
      ++true_answers;
    }
  }
  EXPECT_EQ(true_answers, kConnections * kPerConnection - 1);
}

int64_t RssBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::vector<std::string> parts =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      return std::stoll(parts[1]) * 1024;
    }
  }
  return -1;
}

// The attack of issue 19: 3 connections x 100 streams, each pipelining 80
// requests of 1000 one-octet (malformed) recipients and never reading.
// Before, the server grew by 4.9 GB and a well-behaved client timed out.
// With the default limits its waiting answers are bounded (per stream
// 1 MiB, all streams 256 MiB, 100 streams per peer), so RSS grows by far
// less than that bound plus gRPC's buffers, and a well-behaved client on
// its own connection keeps getting answers.
TEST(HostileE2eTest, StreamsThatNeverReadStayWithinTheMemoryBound) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(StartServer(server));
  const int64_t rss_before = RssBytes(server.process().pid());
  ASSERT_GT(rss_before, 0);

  v1::ValidateRequest big;
  for (int i = 0; i < 1000; ++i) big.add_recipients("x");
  std::string bytes;
  ASSERT_TRUE(big.SerializeToString(&bytes));

  constexpr int kConnections = 3;
  constexpr int kStreams = 100;
  constexpr int kRequests = 80;
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call;
    int written = 0;
    bool failed = false;
    // Finish's completion has its own tag: the Stream's address + 1.
    bool finishing = false;
    bool finished = false;
    grpc::Status status;
  };
  auto finish_tag = [](Stream* st) {
    return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(st) + 1);
  };
  grpc::CompletionQueue cq;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<Stream>> streams;
  for (int c = 0; c < kConnections; ++c) {
    channels.push_back(server.NewChannel());
    grpc::GenericStub stub(channels.back());
    for (int s = 0; s < kStreams; ++s) {
      auto st = std::make_unique<Stream>();
      st->call = stub.PrepareCall(
          &st->context, "/rcptguard.v1.RecipientValidation/ValidateStream",
          &cq);
      st->call->StartCall(st.get());
      streams.push_back(std::move(st));
    }
  }
  grpc::Slice slice(bytes);
  const grpc::ByteBuffer message(&slice, 1);
  // Write until every stream has sent everything or writes stall (the
  // server stopped reading): bounded by count and by 20 s.
  const absl::Time stop = absl::Now() + absl::Seconds(20);
  int idle_rounds = 0;
  while (absl::Now() < stop && idle_rounds < 3) {
    void* tag;
    bool ok;
    const grpc::CompletionQueue::NextStatus next = cq.AsyncNext(
        &tag, &ok, absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    if (next == grpc::CompletionQueue::TIMEOUT) {
      ++idle_rounds;
      continue;
    }
    idle_rounds = 0;
    auto* st = static_cast<Stream*>(tag);
    if (!ok) {
      st->failed = true;
      continue;
    }
    if (st->written < kRequests) {
      ++st->written;
      st->call->Write(message, st);
    }
  }
  int failed = 0;
  for (const auto& st : streams) failed += st->failed ? 1 : 0;

  // A well-behaved client on its own connection is answered meanwhile.
  auto stub = v1::RecipientValidation::NewStub(server.NewChannel());
  {
    // Connects the channel; its setup is not what is measured.
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::ValidateRequest request;
    request.add_recipients("alice@example.com");
    v1::ValidateResponse response;
    ASSERT_TRUE(stub->Validate(&ctx, request, &response).ok());
  }
  std::vector<absl::Duration> latencies;
  for (int i = 0; i < 50; ++i) {
    v1::ValidateRequest request;
    request.set_request_id(i);
    request.mutable_context()->set_client_ip("198.51.100.1");
    request.add_recipients("alice@example.com");
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    v1::ValidateResponse response;
    const absl::Time start = absl::Now();
    grpc::Status status = stub->Validate(&ctx, request, &response);
    latencies.push_back(absl::Now() - start);
    ASSERT_TRUE(status.ok()) << i << ": " << status.error_message();
    ASSERT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
  }
  std::sort(latencies.begin(), latencies.end());
  const int64_t rss_after = RssBytes(server.process().pid());
  const int64_t grown = rss_after - rss_before;
  // Why each stream ended: the refused ones carry the server's status
  // (its failed write may complete before that status arrives on a loaded
  // machine, so the statuses are collected, not the failed writes), the
  // accepted ones are cancelled once every refusal is in or after 20 s.
  for (auto& st : streams) {
    st->finishing = true;
    st->call->Finish(&st->status, finish_tag(st.get()));
  }
  auto refused = [&] {
    int n = 0;
    for (const auto& st : streams) {
      n += st->finished &&
                   st->status.error_code() ==
                       grpc::StatusCode::RESOURCE_EXHAUSTED &&
                   absl::StrContains(st->status.error_message(),
                                     "limits.max_streams_per_peer")
               ? 1
               : 0;
    }
    return n;
  };
  const absl::Time finish_by = absl::Now() + absl::Seconds(20);
  bool cancelled = false;
  int finished = 0;
  while (finished < static_cast<int>(streams.size())) {
    if (!cancelled && (refused() >= 2 * kStreams || absl::Now() >= finish_by)) {
      for (auto& st : streams) st->context.TryCancel();
      cancelled = true;
    }
    void* tag;
    bool ok;
    if (cq.AsyncNext(&tag, &ok,
                     absl::ToChronoTime(absl::Now() + absl::Seconds(1))) !=
        grpc::CompletionQueue::GOT_EVENT) {
      continue;
    }
    const uintptr_t bits = reinterpret_cast<uintptr_t>(tag);
    if ((bits & 1) != 0) {
      reinterpret_cast<Stream*>(bits - 1)->finished = true;
      ++finished;
    }
  }
  std::cout << "never-reading streams: RSS " << rss_before / 1048576
            << " MiB -> " << rss_after / 1048576 << " MiB (+" << grown / 1048576
            << " MiB); streams refused: " << refused() << " of "
            << streams.size() << " (writes failed on " << failed
            << "); well-behaved calls (50): p50 "
            << absl::FormatDuration(latencies[latencies.size() / 2]) << ", p99 "
            << absl::FormatDuration(latencies[latencies.size() * 99 / 100])
            << "\n";
  // 100 streams per peer: the other 200 from 127.0.0.1 are refused, and
  // say which limit refused them.
  EXPECT_GE(refused(), 2 * kStreams);
  // The documented bound: 256 MiB of waiting answers (at most 100 MiB here:
  // 100 streams of 1 MiB) plus gRPC's buffers. Before: +4.9 GB.
  EXPECT_LT(grown, int64_t{512} << 20);

  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST(HostileE2eTest, StreamsPerPeerAreLimited) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      StartServer(server, "limits { max_streams_per_peer: 2 }"));
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext c1, c2, c3;
  auto s1 = stub->ValidateStream(&c1);
  auto s2 = stub->ValidateStream(&c2);
  v1::ValidateRequest request;
  request.add_recipients("alice@example.com");
  v1::ValidateResponse response;
  ASSERT_TRUE(s1->Write(request) && s1->Read(&response));
  ASSERT_TRUE(s2->Write(request) && s2->Read(&response));
  auto s3 = stub->ValidateStream(&c3);
  s3->Write(request);
  EXPECT_FALSE(s3->Read(&response));
  grpc::Status status = s3->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("limits.max_streams_per_peer"));
  // Closing one makes room again (once the server has released the
  // stream, which may be a moment after the client saw it end).
  s1->WritesDone();
  EXPECT_TRUE(s1->Finish().ok());
  bool reopened = false;
  for (int attempt = 0; attempt < 50 && !reopened; ++attempt) {
    grpc::ClientContext c4;
    auto s4 = stub->ValidateStream(&c4);
    if (s4->Write(request) && s4->Read(&response)) {
      EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
      s4->WritesDone();
      EXPECT_TRUE(s4->Finish().ok());
      reopened = true;
    } else {
      EXPECT_EQ(s4->Finish().error_code(),
                grpc::StatusCode::RESOURCE_EXHAUSTED);
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  EXPECT_TRUE(reopened);
  s2->WritesDone();
  EXPECT_TRUE(s2->Finish().ok());
}

// The plaintext health-only port serves grpc.health.v1 and nothing else:
// no reflection (it may listen beyond loopback).
TEST(HostileE2eTest, HealthPortServesNoReflection) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      StartServer(server, "health_listen_address: \"127.0.0.1:0\""));
  ASSERT_GT(server.health_port(), 0);
  // ServerReflectionRequest { list_services: "" }
  const std::string list = Field(7, "");
  const std::string method =
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  std::string out;
  grpc::Status main = RawUnaryCall(server.channel(), method, list, &out);
  EXPECT_TRUE(main.ok()) << main.error_message();
  EXPECT_THAT(out, HasSubstr("rcptguard.v1.RecipientValidation"));
  auto health_channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.health_port()),
                          grpc::InsecureChannelCredentials());
  grpc::Status health = RawUnaryCall(health_channel, method, list, &out);
  EXPECT_EQ(health.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // Health itself answers there.
  grpc::Status check =
      RawUnaryCall(health_channel, "/grpc.health.v1.Health/Check", "", &out);
  EXPECT_TRUE(check.ok()) << check.error_message();
}

}  // namespace
}  // namespace rcptguard
