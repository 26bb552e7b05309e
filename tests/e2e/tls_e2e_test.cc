// Mutual TLS end to end: certificates made with the `openssl` command at
// test time, a real rcptguardd with tls, access lists and a recipient
// budget, and gRPC clients presenting good, missing, expired and foreign
// certificates. Everything on 127.0.0.1.
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/adapter_process.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/http.h"
#include "tests/testutil/slapd.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::AdapterProcess;
using ::rcptguard::testing::BinaryDir;
using ::rcptguard::testing::HttpGet;
using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::Netstring;
using ::rcptguard::testing::PolicyRequest;
using ::rcptguard::testing::RawConnection;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::RunCommand;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::rcptguard::testing::WriteFile;
using ::testing::HasSubstr;

constexpr char kServerName[] = "rcptguard.test";

// Makes, in `dir`: ca.{crt,key} (signs the server and the edges),
// other-ca.crt and its edge, and edge certificates:
//   edge1.*   SAN DNS:edge1.example.net (may validate)
//   ops.*     CN=ops.example.net, no SAN (admin; the CN fallback)
//   expired.* SAN DNS:edge1.example.net, valid in January 2020 only
//   foreign.* SAN DNS:edge1.example.net, signed by other-ca
//   rotated.* SAN DNS:edge2.example.net, signed by ca2 (trusted only after
//             the CA bundle is rotated)
//   longsan.* SAN DNS name of about 8 KB (not in any access list)
std::string MakePki(const std::string& dir) {
  const std::string script = R"SH(
set -eu
cd "$1"
ca() {  # name subject
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" \
    -days 30 -subj "$2" -addext basicConstraints=critical,CA:true \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() {  # name ca subject san-ext-or-empty [extra x509 args]
  name=$1; signer=$2; subject=$3; san=$4; shift 4
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "$subject" 2>/dev/null
  if [ -n "$san" ]; then printf 'subjectAltName=%s\n' "$san" > "$name.ext";
  else : > "$name.ext"; fi
  openssl x509 -req -in "$name.csr" -CA "$signer.crt" -CAkey "$signer.key" \
    -CAcreateserial -out "$name.crt" -days 30 -extfile "$name.ext" "$@" \
    2>/dev/null
}
ca ca "/CN=rcptguard test CA"
ca other-ca "/CN=someone else's CA"
ca ca2 "/CN=rcptguard next CA"
leaf server ca "/CN=rcptguard.test" "DNS:rcptguard.test,IP:127.0.0.1"
leaf edge1 ca "/CN=edge one" "DNS:edge1.example.net"
leaf ops ca "/CN=ops.example.net" ""
leaf foreign other-ca "/CN=edge one" "DNS:edge1.example.net"
leaf rotated ca2 "/CN=edge two" "DNS:edge2.example.net"
# An identity of about 8 KB (130 labels of 60 octets).
label=$(head -c 60 /dev/zero | tr '\0' x)
long=""
for i in $(seq 1 130); do long="$long$label."; done
leaf longsan ca "/CN=long" "DNS:${long}example.net"
# An expired certificate: `openssl ca` takes explicit dates.
mkdir -p expired-ca && : > expired-ca/index.txt && echo 01 > expired-ca/serial
cat > expired-ca/ca.cnf <<EOF
[ca]
default_ca = d
[d]
database = $PWD/expired-ca/index.txt
serial = $PWD/expired-ca/serial
new_certs_dir = $PWD/expired-ca
default_md = sha256
policy = p
copy_extensions = copy
[p]
commonName = supplied
EOF
openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr \
  -subj "/CN=edge one" -addext subjectAltName=DNS:edge1.example.net 2>/dev/null
openssl ca -batch -config expired-ca/ca.cnf -cert ca.crt -keyfile ca.key \
  -startdate 20200101000000Z -enddate 20200131000000Z -in expired.csr \
  -out expired.crt -notext 2>/dev/null
cp ca.crt client-ca.crt
)SH";
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({"/bin/bash", "-c", script, "pki", dir}, &output);
  if (!rc.ok()) return std::string(rc.status().message());
  if (*rc != 0) {
    return absl::StrCat("openssl failed (status ", *rc, "): ", output);
  }
  return "";
}

std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::string& dir,
                                                      const std::string& who) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(dir + "/ca.crt");
  if (!who.empty()) {
    ssl.pem_cert_chain = ReadFile(dir + "/" + who + ".crt");
    ssl.pem_private_key = ReadFile(dir + "/" + who + ".key");
  }
  return grpc::SslCredentials(ssl);
}

class TlsE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new std::string(MakeTempDir("rg-pki"));
    error_ = new std::string(MakePki(*pki_));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete error_;
  }

  void SetUp() override { ASSERT_EQ(*error_, "") << "making certificates"; }

  // rcptguardd with mutual TLS, reachable through edge1's certificate.
  void StartServer(const std::string& extra = "") {
    server_.SetChannelCredentials(Credentials(*pki_, "edge1"), kServerName);
    ASSERT_NO_FATAL_FAILURE(server_.Start(absl::StrCat(
        R"(listen_address: "127.0.0.1:0"
health_listen_address: "127.0.0.1:0"
domains { name: "example.com" }
directory { ldif_files: ")",
        SourceDir(),
        R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
tls { cert_file: ")",
        *pki_, R"(/server.crt" key_file: ")", *pki_, R"(/server.key"
      client_ca_file: ")",
        *pki_, R"(/client-ca.crt" reload_interval: "1s" }
access { validate: "edge1.example.net" validate: "edge2.example.net"
         admin: "ops.example.net" }
shutdown { grace_ms: 0 }
)",
        extra)));
    ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& who) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(kServerName);
    args.SetInt("rcptguard.test.channel", ++channels_);
    return grpc::CreateCustomChannel(server_.target(), Credentials(*pki_, who),
                                     args);
  }

  static grpc::Status Validate(const std::shared_ptr<grpc::Channel>& channel,
                               int recipients,
                               v1::ValidateResponse* response = nullptr) {
    v1::ValidateRequest request;
    request.mutable_context()->set_client_ip("192.0.2.1");
    // The certificate's identity wins over what the request claims.
    request.mutable_context()->set_edge_id("claimed-edge");
    for (int i = 0; i < recipients; ++i) {
      request.add_recipients("alice@example.com");
    }
    v1::ValidateResponse local;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    return v1::RecipientValidation::NewStub(channel)->Validate(
        &ctx, request, response != nullptr ? response : &local);
  }

  static grpc::Status Reload(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    v1::ReloadResponse response;
    return v1::Admin::NewStub(channel)->Reload(&ctx, v1::ReloadRequest(),
                                               &response);
  }

  static grpc::Status GetStatus(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    v1::GetStatusResponse response;
    return v1::Admin::NewStub(channel)->GetStatus(&ctx, v1::GetStatusRequest(),
                                                  &response);
  }

  static std::string* pki_;
  static std::string* error_;
  ServerProcess server_;
  int channels_ = 0;
};

std::string* TlsE2eTest::pki_ = nullptr;
std::string* TlsE2eTest::error_ = nullptr;

TEST_F(TlsE2eTest, OnlyKnownEdgesGetInAndOnlyAdminsAdminister) {
  ASSERT_NO_FATAL_FAILURE(StartServer());

  v1::ValidateResponse response;
  grpc::Status ok = Validate(Channel("edge1"), 1, &response);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);

  // No certificate, an expired one, one from another CA: the handshake
  // fails, so the call never reaches a handler.
  for (const char* who : {"", "expired", "foreign"}) {
    grpc::Status refused = Validate(Channel(who), 1);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE)
        << (*who ? who : "no certificate") << ": " << refused.error_message();
  }

  // edge1 may validate and read, but not reload; ops (identity from its CN)
  // may reload and read, but is not an edge.
  EXPECT_EQ(Reload(Channel("edge1")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(GetStatus(Channel("edge1")).ok());
  grpc::Status reload = Reload(Channel("ops"));
  EXPECT_TRUE(reload.ok()) << reload.error_message();
  EXPECT_TRUE(GetStatus(Channel("ops")).ok());
  grpc::Status ops_validate = Validate(Channel("ops"), 1);
  EXPECT_EQ(ops_validate.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(ops_validate.error_message(),
              HasSubstr("identity \"ops.example.net\" may not validate"));

  const std::string metrics = HttpGet(server_.metrics_port(), "/metrics");
  // Metrics name the certificate identity, never the claimed edge_id.
  EXPECT_THAT(metrics, HasSubstr("edge_id=\"edge1.example.net\""));
  EXPECT_THAT(metrics, ::testing::Not(HasSubstr("claimed-edge")));
  EXPECT_THAT(metrics, HasSubstr("rcptguard_access_refused_total{reason="
                                 "\"permission_denied\"} 2"));
  EXPECT_THAT(server_.log(), HasSubstr("call_refused"));
}

// Issue 19: an 8 KB identity made the refusal too large to send (the client
// saw RESOURCE_EXHAUSTED); the identity is now clipped in messages. And the
// refusal log is limited per identity: one client refused in a loop does
// not hide another's refusals.
TEST_F(TlsE2eTest, LongIdentitiesAreClippedAndRefusalLogsArePerIdentity) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto longsan = Channel("longsan");
  for (int i = 0; i < 50; ++i) {
    grpc::Status refused = Validate(longsan, 1);
    ASSERT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << refused.error_message();
    ASSERT_LT(refused.error_message().size(), 400u);
    ASSERT_THAT(refused.error_message(), HasSubstr("octets)"));
  }
  grpc::Status ops = Validate(Channel("ops"), 1);
  EXPECT_EQ(ops.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  const std::string log = server_.log();
  EXPECT_THAT(log,
              HasSubstr("identity \\\"ops.example.net\\\" may not validate"))
      << log;
  EXPECT_THAT(log, HasSubstr("xxxxxxxx"));
}

// An edge may learn the served domains (for its failure policy), as may
// readers and admins; a certificate from another CA gets nothing.
TEST_F(TlsE2eTest, ServedDomainsForEdgesAndReaders) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto served = [&](const std::string& who) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    v1::ServedDomains answer;
    grpc::Status s = v1::RecipientValidation::NewStub(Channel(who))
                         ->GetServedDomains(&ctx, {}, &answer);
    if (s.ok()) {
      EXPECT_EQ(answer.domains(0).name(), "example.com");
    }
    return s.error_code();
  };
  EXPECT_EQ(served("edge1"), grpc::StatusCode::OK);
  EXPECT_EQ(served("ops"), grpc::StatusCode::OK);
  EXPECT_EQ(served("foreign"), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsE2eTest, HealthPortAndCliWithClientCertificates) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string output;
  const std::string cli = BinaryDir() + "/clients/rcptguard";
  const std::vector<std::string> tls = {
      "--tls", "--tls_ca=" + *pki_ + "/ca.crt",
      "--tls_server_name=" + std::string(kServerName)};
  auto with = [&](std::vector<std::string> argv, const std::string& who) {
    argv.insert(argv.end(), tls.begin(), tls.end());
    argv.push_back("--tls_cert=" + *pki_ + "/" + who + ".crt");
    argv.push_back("--tls_key=" + *pki_ + "/" + who + ".key");
    argv.push_back("--server=" + server_.target());
    return argv;
  };
  absl::StatusOr<int> rc =
      RunCommand(with({cli, "check", "alice@example.com"}, "edge1"), &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(WEXITSTATUS(*rc), 0) << output;
  EXPECT_THAT(output, HasSubstr("alice@example.com\tVALID"));
  rc = RunCommand(with({cli, "reload"}, "edge1"), &output);
  EXPECT_EQ(WEXITSTATUS(*rc), 3) << output;
  EXPECT_THAT(output, HasSubstr("may not admin"));
  rc = RunCommand(with({cli, "reload"}, "ops"), &output);
  EXPECT_EQ(WEXITSTATUS(*rc), 0) << output;
  // Plaintext to the TLS port fails; the health-only port answers without
  // a certificate.
  rc = RunCommand(
      {cli, "health", "--server=" + server_.target(), "--timeout_ms=3000"},
      &output);
  EXPECT_NE(WEXITSTATUS(*rc), 0) << output;
  rc = RunCommand({cli, "health",
                   absl::StrCat("--server=127.0.0.1:", server_.health_port())},
                  &output);
  EXPECT_EQ(WEXITSTATUS(*rc), 0) << output;
  EXPECT_THAT(output, HasSubstr("SERVING"));
}

TEST_F(TlsE2eTest, PostfixAdapterPresentsItsCertificate) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::vector<std::string> tls = {
      "--tls", "--tls_ca=" + *pki_ + "/ca.crt",
      "--tls_cert=" + *pki_ + "/edge1.crt", "--tls_key=" + *pki_ + "/edge1.key",
      "--tls_server_name=" + std::string(kServerName)};
  AdapterProcess adapter;
  ASSERT_NO_FATAL_FAILURE(
      adapter.Start(server_.target(), "tempfail", "postfix-edge", tls));
  RawConnection policy(adapter.policy_port());
  ASSERT_TRUE(policy.connected());
  ASSERT_TRUE(policy.Send(PolicyRequest("192.0.2.7", "alice@example.com")));
  EXPECT_EQ(policy.ReadUntil("\n\n"), "action=DUNNO\n\n") << adapter.log();
  ASSERT_TRUE(policy.Send(PolicyRequest("192.0.2.7", "nobody@example.com")));
  EXPECT_EQ(policy.ReadUntil("\n\n"), "action=550 5.1.1 User unknown\n\n");
  RawConnection socketmap(adapter.socketmap_port());
  ASSERT_TRUE(socketmap.Send(Netstring("rcpt alice@example.com")));
  EXPECT_EQ(socketmap.ReadUntil(","), Netstring("OK valid"));
  // The server counted the certificate's identity, not --edge_id.
  EXPECT_THAT(HttpGet(server_.metrics_port(), "/metrics"),
              HasSubstr("edge_id=\"edge1.example.net\""));

  // Without a client certificate the adapter gets no answer and applies
  // its failure policy (tempfail).
  AdapterProcess anonymous;
  ASSERT_NO_FATAL_FAILURE(
      anonymous.Start(server_.target(), "tempfail", "postfix-edge",
                      {"--tls", "--tls_ca=" + *pki_ + "/ca.crt",
                       "--tls_server_name=" + std::string(kServerName)}));
  RawConnection refused(anonymous.policy_port());
  ASSERT_TRUE(refused.Send(PolicyRequest("192.0.2.7", "alice@example.com")));
  EXPECT_THAT(refused.ReadUntil("\n\n"), HasSubstr("action=451 4.3.0"));
}

TEST_F(TlsE2eTest, RecipientBudgetPerIdentity) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer("limits { recipients_per_second_per_identity: 50 "
                  "rate_burst_seconds: 1 }"));
  auto edge = Channel("edge1");
  // The bucket holds 50. A request is admitted while the bucket is not in
  // debt: 100 recipients take it to -50, so the next request is refused
  // until a second of refill has paid that back.
  ASSERT_TRUE(Validate(edge, 100).ok());
  grpc::Status over = Validate(edge, 1);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(over.error_message(), HasSubstr("over its recipient budget"));
  // Another identity has its own budget.
  EXPECT_TRUE(GetStatus(Channel("ops")).ok());
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_TRUE(Validate(edge, 1).ok());
  EXPECT_THAT(HttpGet(server_.metrics_port(), "/metrics"),
              HasSubstr("rcptguard_access_refused_total{reason="
                        "\"rate_limited\"} 1"));
}

// A stream is authorized once, at its first message, and every message is
// charged to the identity's budget.
TEST_F(TlsE2eTest, StreamsAreAuthorizedAndCharged) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer("limits { recipients_per_second_per_identity: 50 "
                  "rate_burst_seconds: 1 }"));
  auto stream_status = [](const std::shared_ptr<grpc::Channel>& channel,
                          const std::vector<int>& sizes, int* answered) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    auto stream =
        v1::RecipientValidation::NewStub(channel)->ValidateStream(&ctx);
    *answered = 0;
    for (size_t m = 0; m < sizes.size(); ++m) {
      v1::ValidateRequest request;
      request.set_request_id(m + 1);
      for (int i = 0; i < sizes[m]; ++i) {
        request.add_recipients("alice@example.com");
      }
      v1::ValidateResponse response;
      if (!stream->Write(request) || !stream->Read(&response)) break;
      ++*answered;
    }
    stream->WritesDone();
    return stream->Finish();
  };
  int answered = 0;
  grpc::Status ops = stream_status(Channel("ops"), {1}, &answered);
  EXPECT_EQ(ops.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(answered, 0);
  // 100 recipients take the bucket of 50 into debt: the next message ends
  // the stream with RESOURCE_EXHAUSTED naming it.
  grpc::Status over = stream_status(Channel("edge1"), {100, 1}, &answered);
  EXPECT_EQ(answered, 1);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(over.error_message(), HasSubstr("request_id 2: identity "
                                              "\"edge1.example.net\" is over "
                                              "its recipient budget"));
}

// A client that connects and never starts its TLS handshake is cut at
// limits.handshake_timeout (idle_timeout, 5 min here, is not what closes it).
TEST_F(TlsE2eTest, SilentClientIsCutAtTheHandshakeTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartServer("limits { handshake_timeout: \"1s\" }"));
  RawConnection silent(server_.port(), /*timeout_seconds=*/15);
  ASSERT_TRUE(silent.connected());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(silent.DrainedToClose());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE(Validate(Channel("edge1"), 1).ok());
}

TEST_F(TlsE2eTest, RotatingTheClientCaDropsNoCall) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto edge1 = Channel("edge1");
  ASSERT_TRUE(Validate(edge1, 1).ok());
  EXPECT_EQ(Validate(Channel("rotated"), 1).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // Calls keep flowing on edge1's connection while the CA bundle is
  // replaced (renamed into place) by one that also trusts ca2.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, calls{0};
  std::thread load([&] {
    while (!stop.load()) {
      if (!Validate(edge1, 5).ok()) failures.fetch_add(1);
      calls.fetch_add(1);
    }
  });
  const std::string bundle =
      ReadFile(*pki_ + "/ca.crt") + ReadFile(*pki_ + "/ca2.crt");
  ASSERT_TRUE(WriteFile(*pki_ + "/client-ca.crt.tmp", bundle).ok());
  ASSERT_EQ(std::rename((*pki_ + "/client-ca.crt.tmp").c_str(),
                        (*pki_ + "/client-ca.crt").c_str()),
            0);
  // reload_interval is 1 s: a new connection with ca2's edge gets in soon.
  bool rotated = false;
  for (int i = 0; i < 100 && !rotated; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    rotated = Validate(Channel("rotated"), 1).ok();
  }
  stop.store(true);
  load.join();
  // Put the bundle back for the other tests.
  ASSERT_TRUE(
      WriteFile(*pki_ + "/client-ca.crt", ReadFile(*pki_ + "/ca.crt")).ok());
  EXPECT_TRUE(rotated) << server_.log();
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(Validate(Channel("edge1"), 1).ok());
}

TEST(TlsConfigE2eTest, UnreadableOrNonPemTlsFilesStopTheStart) {
  const std::string dir = MakeTempDir("rg-tls-files");
  ASSERT_TRUE(WriteFile(dir + "/not-pem.crt", "just text\n").ok());
  // The key and CA exist (not PEM either): the certificate is looked at
  // first.
  ASSERT_TRUE(WriteFile(dir + "/k.key", "just text\n").ok());
  ASSERT_TRUE(WriteFile(dir + "/ca.crt", "just text\n").ok());
  // A missing file is found by the same check as --check_config's
  // (server/config/config_files.h); a file that is there but no PEM by the
  // server's start.
  for (const auto& [cert, error] :
       {std::pair<std::string, std::string>{
            dir + "/missing.crt",
            "invalid configuration: " + dir + "/c.textproto: tls.cert_file " +
                dir + "/missing.crt: cannot open: No such file or directory"},
        {dir + "/not-pem.crt", "cannot start: tls.cert_file: \"" + dir +
                                   "/not-pem.crt\" holds no PEM block"}}) {
    ASSERT_TRUE(
        WriteFile(
            dir + "/c.textproto",
            absl::StrCat(
                R"(listen_address: "127.0.0.1:0"
domains { name: "example.com" }
directory { ldif_files: ")",
                SourceDir(),
                R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
tls { cert_file: ")",
                cert, R"(" key_file: ")", dir, R"(/k.key" client_ca_file: ")",
                dir, R"(/ca.crt" })"))
            .ok());
    std::string output;
    absl::StatusOr<int> rc = RunCommand(
        {BinaryDir() + "/server/rcptguardd", "--config=" + dir + "/c.textproto",
         "--metrics_listen=127.0.0.1:0"},
        &output);
    ASSERT_TRUE(rc.ok());
    EXPECT_EQ(WEXITSTATUS(*rc), 2) << output;
    EXPECT_THAT(output, HasSubstr(error)) << output;
  }
}

TEST(TlsConfigE2eTest, PlaintextBeyondLoopbackIsRefusedAtStart) {
  const std::string dir = MakeTempDir("rg-plain");
  ASSERT_TRUE(
      WriteFile(
          dir + "/c.textproto",
          absl::StrCat(
              R"(insecure_plaintext: true
domains { name: "example.com" }
directory { ldif_files: ")",
              SourceDir(),
              R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" })"))
          .ok());
  std::string output;
  absl::StatusOr<int> rc = RunCommand(
      {BinaryDir() + "/server/rcptguardd", "--config=" + dir + "/c.textproto",
       "--listen=0.0.0.0:0", "--check_config"},
      &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(WEXITSTATUS(*rc), 2);
  EXPECT_THAT(output, HasSubstr("insecure_plaintext: plaintext is only "
                                "allowed on a loopback address, not "
                                "0.0.0.0:0; configure tls"));
}

}  // namespace
}  // namespace rcptguard
