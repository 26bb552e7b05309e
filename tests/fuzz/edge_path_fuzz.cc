// libFuzzer target for the whole path from a Postfix policy request to the
// server's answer, in process: the adapter's parser and routing, the request
// the client library builds (ClearInvalidContextText), its serialization,
// the server's parsing of the raw bytes (ParseMessage, as the validation
// service does) and the Validator on a small directory, then the adapter's
// answer. The invariants are those of issue 19: whatever octets the remote
// SMTP client chose, the request the edge builds always parses on the
// server, is answered with one verdict per recipient (or refused as
// INVALID_ARGUMENT, which the edge answers as malformed), a recipient that
// is not valid UTF-8 is MALFORMED, and the policy reply stays one line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "clients/cpp/client.h"
#include "clients/postfix/policy_protocol.h"
#include "common/text.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/directory/directory.h"
#include "server/directory/directory_handle.h"
#include "server/service/validator.h"
#include "server/service/wire.h"

namespace {

using namespace rcptguard;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct World {
  World() : validator(Config(), &handle) {
    std::vector<directory::DomainPolicy> domains(1);
    domains[0].name = "example.com";
    domains[0].subaddress_delimiters = "+";
    auto builder =
        directory::DirectoryBuilder::Create(directory::SipKey{1, 2}, domains);
    Check(builder.ok());
    for (const char* a : {"alice@example.com", "j\xc3\xb6rg@example.com"}) {
      builder->AddAddress(a);
    }
    directory::DirectoryInfo info;
    info.version = "fuzz";
    info.built_at = absl::Now();
    auto dir = std::move(*builder).Build(info);
    Check(dir.ok());
    handle.Replace(*dir);
  }
  static v1::ServerConfig Config() {
    v1::ServerConfig config;
    config.mutable_limits()->set_max_recipients_per_request(1000);
    config.mutable_limits()->set_max_address_length(1024);
    return config;
  }
  directory::DirectoryHandle handle;
  service::Validator validator;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  using namespace rcptguard::postfix;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  PolicyLimits limits;
  limits.max_line = 2048;
  limits.max_attributes = 32;
  PolicyParser parser(limits);
  parser.Append(input);
  for (;;) {
    PolicyRequest request;
    const PolicyParser::Next next = parser.NextRequest(&request);
    if (next != PolicyParser::Next::kRequest) return 0;
    const PolicyRoute route = RoutePolicyRequest(request, "");
    if (route.kind == PolicyRoute::Kind::kAnswer) continue;

    // What the client library sends.
    v1::ValidateRequest sent;
    *sent.mutable_context() = route.query.context;
    client::ClearInvalidContextText(sent.mutable_context());
    sent.add_recipients(route.query.recipient);
    std::string wire;
    Check(sent.SerializeToString(&wire));

    // What the server reads: it always parses.
    grpc::Slice slice(wire);
    const grpc::ByteBuffer bytes(&slice, 1);
    v1::ValidateRequest received;
    Check(service::ParseMessage(bytes, &received).ok());
    Check(received.recipients_size() == 1);
    Check(received.recipients(0) == route.query.recipient);
    Check(received.context().helo() == route.query.context.helo());
    Check(received.context().mail_from() == route.query.context.mail_from());

    v1::ValidateResponse response;
    const absl::Status status =
        world->validator.Validate(received, &response, "");
    client::RecipientResult result;
    if (status.ok()) {
      Check(response.verdicts_size() == 1);
      if (!IsValidUtf8(route.query.recipient)) {
        Check(response.verdicts(0).status() == v1::RECIPIENT_STATUS_MALFORMED);
      }
      // The answer serializes and parses back (its texts are UTF-8).
      grpc::ByteBuffer answer;
      Check(service::SerializeMessage(response, &answer).ok());
      v1::ValidateResponse back;
      Check(service::ParseMessage(answer, &back).ok());
      result.source = client::RecipientResult::Source::kService;
      result.verdict = back.verdicts(0);
      result.client = back.client();
    } else {
      // Over a limit: the request's fault, answered as malformed.
      Check(status.code() == absl::StatusCode::kInvalidArgument);
      result.source = client::RecipientResult::Source::kInvalid;
      result.error = status;
    }
    const PolicyAnswer answer = AnswerPolicy(result, absl::Seconds(1));
    Check(answer.outcome != "fail_open" && answer.outcome != "fail_tempfail");
    const std::string reply = FormatPolicyReply(answer.action);
    Check(reply.find('\n') == reply.size() - 2);
  }
}
