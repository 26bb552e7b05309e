// rcptguard: command-line client for rcptguardd, and the snapshot tools.
//
//   rcptguard check ADDR... [--client_ip IP] [--mail_from ADDR] [--json]
//   rcptguard status [--json]
//   rcptguard health                       exit 0 when SERVING
//   rcptguard offenders [N] [--json]
//   rcptguard forget IP|CIDR
//   rcptguard reload [--force]
//   rcptguard snapshot keygen|build|verify|inspect ...  (snapshot_command.h)
//
// Every server command talks to the server through the client library
// (clients/cpp/client.h), with TLS when --tls is given (--tls_ca,
// --tls_cert/--tls_key for mutual TLS, --tls_server_name). Each command
// accepts only its own flags (kCommands below); `rcptguard COMMAND --help`
// prints its usage and flags. Exit codes: kExitUsageText.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "clients/cli/json_output.h"
#include "clients/cli/snapshot_command.h"
#include "clients/cpp/client.h"
#include "common/flag_spelling.h"
#include "common/program.h"
#include "common/text.h"
#include "google/protobuf/util/time_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "rcptguardd address.");
ABSL_FLAG(std::string, client_ip, "",
          "SMTP client IP to report (check); empty makes the check a dry "
          "lookup that feeds no harvest counters.");
ABSL_FLAG(std::string, mail_from, "", "Envelope sender to report (check).");
ABSL_FLAG(bool, json, false, "Print the response as JSON.");
ABSL_FLAG(int, timeout_ms, 5000, "Deadline of each call.");
ABSL_FLAG(bool, tls, false, "Connect with TLS.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificates for the server's certificate (TLS); empty: "
          "the system roots.");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mutual TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM client private key (mutual TLS).");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name expected in the server certificate, if not the host of "
          "--server.");
ABSL_FLAG(bool, force, false,
          "reload: load past the shrink and missing-domain guards; "
          "snapshot keygen: replace an existing key file.");

namespace {

using rcptguard::v1::Admin;
using rcptguard::v1::RecipientValidation;

constexpr char kExitUsageText[] =
    "exit status: 0 success; 1 check: a recipient is not VALID, health: "
    "the server is not SERVING, snapshot: a failed build, verification or "
    "I/O; 2 a usage error; 3 the server did not answer or refused the "
    "call.\n";

// The flags every command that talks to rcptguardd takes.
const std::vector<std::string>& ConnectionFlags() {
  static const auto* flags = new std::vector<std::string>{
      "server",  "timeout_ms",     "tls", "tls_ca", "tls_cert",
      "tls_key", "tls_server_name"};
  return *flags;
}

struct Command {
  std::string name;       // "check", "snapshot build"
  std::string synopsis;   // operands and flags after the name
  std::string summary;    // one line for the command list
  std::string details;    // more for COMMAND --help ("" if none)
  bool connects = false;  // takes ConnectionFlags()
  std::vector<std::string> flags;

  std::vector<std::string> AllFlags() const {
    std::vector<std::string> all = flags;
    if (connects) {
      all.insert(all.end(), ConnectionFlags().begin(), ConnectionFlags().end());
    }
    return all;
  }
};

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"check",
       "ADDR... [--client_ip IP] [--mail_from ADDR] [--json]",
       "validate recipients; exit 1 when any is not VALID",
       "Asks rcptguardd about each address, as an edge would; without "
       "--client_ip the lookup is dry (feeds no harvest counters). Prints "
       "one line per recipient (address, status, SMTP reply), then the "
       "client verdict and the directory version; --json prints one object "
       "whose verdicts each carry their \"recipient\".\n"
       "Exit status, like `postmap -q`: 0 when every recipient is VALID, 1 "
       "when any is UNKNOWN, NOT_SERVED or MALFORMED, 2 a usage error, 3 "
       "no answer from the server.\n",
       true,
       {"client_ip", "mail_from", "json"}},
      {"status", "[--json]", "show the served directory", "", true, {"json"}},
      {"health",
       "",
       "exit 0 when the server is SERVING (1 when not)",
       "",
       true,
       {}},
      {"offenders",
       "[N] [--json]",
       "clients with the most unknown recipients (N: 1..1000)",
       "",
       true,
       {"json"}},
      {"forget", "IP|CIDR", "clear a client's harvest state", "", true, {}},
      {"reload",
       "[--force]",
       "load the directory source now",
       "--force loads past the shrink and missing-domain guards.\n",
       true,
       {"force"}},
      {"snapshot keygen",
       "--out FILE [--force]",
       "make a fingerprint key file",
       "Never overwrites a key unless --force is given.\n",
       false,
       {"out", "force"}},
      {"snapshot build",
       "(--from_ldif FILE[,FILE...] | --from_ldap URI) "
       "(--preset ad|openldap | --mapping FILE) "
       "(--domains a.com,b.org | --config SERVER_CONFIG) "
       "--key FILE --out FILE [flags]",
       "build a snapshot from LDIF exports or a live LDAP export",
       "Writes the snapshot atomically, only after the whole source was "
       "read and it holds an address in a served domain. With --config, "
       "the domains, key, mapping and output path come from rcptguardd's "
       "config. See docs/snapshots.md.\n",
       false,
       {"out", "from_ldif", "from_ldap", "preset", "mapping",
        "include_disabled_accounts", "domains", "config", "key",
        "snapshot_version", "source", "base_dn", "filter", "bind_dn",
        "password_file", "start_tls", "ca_file", "page_size", "timeout"}},
      {"snapshot verify",
       "FILE [--key FILE | --config SERVER_CONFIG]",
       "check a snapshot's checksum (and its key)",
       "",
       false,
       {"key", "config"}},
      {"snapshot inspect",
       "FILE [--json]",
       "show what a snapshot holds (counts, domains, key id)",
       "",
       false,
       {"json"}},
  };
  return *commands;
}

const Command* FindCommand(std::string_view name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// The synopsis wrapped, continuation lines indented; ends with a newline.
std::string SynopsisLines(const Command& c) {
  const std::string wrapped = rcptguard::WrapText(c.synopsis, 6);
  return wrapped.size() > 6 ? wrapped.substr(6) : "\n";
}

std::string TopUsage() {
  std::string text =
      "usage: rcptguard COMMAND [ARGS] [FLAGS]\n"
      "Command-line client for rcptguardd, and the snapshot tools.\n\n"
      "commands:\n";
  for (const Command& c : Commands()) {
    absl::StrAppend(&text, "  ", absl::StrFormat("%-18s", c.name), "  ",
                    c.summary, "\n");
  }
  absl::StrAppend(&text, "\n",
                  rcptguard::WrapText(absl::StrCat(
                      "`rcptguard COMMAND --help` prints a command's usage "
                      "and flags; flags may be spelled --client_ip or "
                      "--client-ip. The docs: rcptguard(1), "
                      "docs/snapshots.md.\n",
                      kExitUsageText)));
  return text;
}

std::string CommandUsage(const Command& c) {
  std::string text = absl::StrCat("usage: rcptguard ", c.name, " ",
                                  SynopsisLines(c), c.summary, ".\n");
  if (!c.details.empty()) {
    absl::StrAppend(&text, "\n", rcptguard::WrapText(c.details));
  }
  if (!c.flags.empty()) {
    absl::StrAppend(&text, "\nflags:\n", rcptguard::DescribeFlags(c.flags));
  }
  if (c.connects) {
    absl::StrAppend(&text, "\nconnection flags:\n",
                    rcptguard::DescribeFlags(ConnectionFlags()));
  }
  if (c.name.rfind("snapshot ", 0) == 0) {
    absl::StrAppend(&text,
                    "\nexit status: 0 success, 1 a failed build, "
                    "verification or I/O, 2 a usage error.\n");
  } else if (c.name != "check") {
    absl::StrAppend(&text, "\n", rcptguard::WrapText(kExitUsageText));
  }
  return text;
}

std::string SnapshotUsage() {
  std::string text =
      "usage: rcptguard snapshot SUBCOMMAND [ARGS] [FLAGS]\n\n"
      "subcommands:\n";
  for (const Command& c : Commands()) {
    if (c.name.rfind("snapshot ", 0) != 0) continue;
    absl::StrAppend(&text, "  rcptguard ", c.name, " ", SynopsisLines(c),
                    "      ", c.summary, "\n");
  }
  absl::StrAppend(&text,
                  "\n`rcptguard snapshot SUBCOMMAND --help` prints its "
                  "flags. See docs/snapshots.md.\n");
  return text;
}

// The command named by the positional arguments ("check",
// "snapshot build"), or "" / "snapshot" when none is complete.
std::string CommandName(const std::vector<std::string>& positional) {
  if (positional.empty()) return "";
  if (positional[0] != "snapshot") return positional[0];
  if (positional.size() < 2) return "snapshot";
  return absl::StrCat("snapshot ", positional[1]);
}

// Abseil's own flags (--flagfile, ...) apply to every command.
bool IsLibraryFlag(const std::string& name) {
  return name == "flagfile" || name == "fromenv" || name == "tryfromenv" ||
         name == "undefok";
}

rcptguard::client::ClientOptions Options() {
  rcptguard::client::ClientOptions o;
  o.target = absl::GetFlag(FLAGS_server);
  o.deadline = absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  o.edge_id = "rcptguard-cli";
  o.batch_window = absl::ZeroDuration();
  o.tls.enabled = absl::GetFlag(FLAGS_tls);
  o.tls.ca_file = absl::GetFlag(FLAGS_tls_ca);
  o.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  o.tls.server_name_override = absl::GetFlag(FLAGS_tls_server_name);
  return o;
}

// Made once in main() from the flags, before any command runs.
std::shared_ptr<grpc::Channel>& ChannelSlot() {
  static auto* channel = new std::shared_ptr<grpc::Channel>();
  return *channel;
}
std::shared_ptr<grpc::Channel> Channel() { return ChannelSlot(); }

void SetDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::GetFlag(FLAGS_timeout_ms)));
}

int RpcFailed(const char* what, const grpc::Status& status) {
  std::fprintf(stderr, "rcptguard: %s failed: %s (code %d)\n", what,
               status.error_message().c_str(),
               static_cast<int>(status.error_code()));
  return 3;
}

using rcptguard::cli::ToJson;

std::string StatusName(rcptguard::v1::RecipientStatus s) {
  switch (s) {
    case rcptguard::v1::RECIPIENT_STATUS_VALID:
      return "VALID";
    case rcptguard::v1::RECIPIENT_STATUS_UNKNOWN:
      return "UNKNOWN";
    case rcptguard::v1::RECIPIENT_STATUS_NOT_SERVED:
      return "NOT_SERVED";
    case rcptguard::v1::RECIPIENT_STATUS_MALFORMED:
      return "MALFORMED";
    default:
      return "UNSPECIFIED";
  }
}

std::string ActionName(rcptguard::v1::ClientAction a) {
  std::string name = rcptguard::v1::ClientAction_Name(a);
  constexpr std::string_view kPrefix = "CLIENT_ACTION_";
  if (name.rfind(kPrefix, 0) == 0) name = name.substr(kPrefix.size());
  return name;
}

// ActionName, with "ACCEPT_ALL" for an ACCEPT a harvest rule decided
// (every recipient answered accepted).
std::string VerdictActionName(const rcptguard::v1::ClientVerdict& v) {
  if (v.action() == rcptguard::v1::CLIENT_ACTION_ACCEPT && !v.rule().empty()) {
    return "ACCEPT_ALL";
  }
  return ActionName(v.action());
}

int Check(const std::vector<char*>& args) {
  if (args.size() < 3) {
    std::fprintf(stderr, "rcptguard check: give at least one ADDR\n%s",
                 CommandUsage(*FindCommand("check")).c_str());
    return 2;
  }
  rcptguard::v1::ValidateRequest request;
  request.set_request_id(1);
  const std::string client_ip = absl::GetFlag(FLAGS_client_ip);
  request.mutable_context()->set_client_ip(client_ip);
  request.mutable_context()->set_mail_from(absl::GetFlag(FLAGS_mail_from));
  request.mutable_context()->set_edge_id("rcptguard-cli");
  request.set_dry_run(client_ip.empty());
  for (size_t i = 2; i < args.size(); ++i) request.add_recipients(args[i]);

  absl::StatusOr<std::unique_ptr<rcptguard::client::Client>> validator =
      rcptguard::client::Client::CreateWithChannel(Options(), Channel());
  if (!validator.ok()) {
    std::fprintf(stderr, "rcptguard: %s\n",
                 std::string(validator.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<rcptguard::v1::ValidateResponse> answer =
      (*validator)->ValidateSync(request);
  if (!answer.ok()) {
    return RpcFailed(
        "Validate",
        grpc::Status(static_cast<grpc::StatusCode>(answer.status().code()),
                     std::string(answer.status().message())));
  }
  const rcptguard::v1::ValidateResponse& response = *answer;
  // Like `postmap -q`: 1 when a key is not found.
  int exit_code = 0;
  for (const auto& v : response.verdicts()) {
    if (v.status() != rcptguard::v1::RECIPIENT_STATUS_VALID) exit_code = 1;
  }
  if (response.verdicts_size() != request.recipients_size()) exit_code = 3;
  if (absl::GetFlag(FLAGS_json)) {
    std::string out = "{\"verdicts\": [";
    for (int i = 0; i < response.verdicts_size(); ++i) {
      if (i > 0) out += ", ";
      absl::StrAppend(&out, "{\"recipient\": ",
                      rcptguard::JsonQuote(i < request.recipients_size()
                                               ? request.recipients(i)
                                               : std::string()),
                      ", ");
      rcptguard::cli::AppendJsonMembers(out, response.verdicts(i));
      out += '}';
    }
    out += "], ";
    rcptguard::cli::AppendJsonMembers(out, response, "verdicts");
    out += "}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return exit_code;
  }
  for (int i = 0; i < response.verdicts_size(); ++i) {
    const auto& v = response.verdicts(i);
    std::string line =
        absl::StrCat(request.recipients(i), "\t", StatusName(v.status()), "\t",
                     v.reply().code(), " ", v.reply().enhanced_status(), " ",
                     v.reply().text());
    if (v.monitor_only()) absl::StrAppend(&line, "\t(monitor: would reject)");
    if (!v.detail().empty()) absl::StrAppend(&line, "\t(", v.detail(), ")");
    std::printf("%s\n", line.c_str());
  }
  const auto& c = response.client();
  std::string client = absl::StrCat("client\t", ActionName(c.action()));
  if (!c.rule().empty()) absl::StrAppend(&client, "\trule=", c.rule());
  if (c.unknown_in_window() > 0) {
    absl::StrAppend(&client, "\tunknown_in_window=", c.unknown_in_window());
  }
  if (c.delay_ms() > 0) absl::StrAppend(&client, "\tdelay_ms=", c.delay_ms());
  if (c.reply().code() != 0) {
    absl::StrAppend(&client, "\t", c.reply().code(), " ",
                    c.reply().enhanced_status(), " ", c.reply().text());
  }
  std::printf("%s\n", client.c_str());
  std::printf("directory\t%s\n", response.directory_version().c_str());
  return exit_code;
}

int Status() {
  auto stub = Admin::NewStub(Channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  rcptguard::v1::GetStatusResponse response;
  grpc::Status status =
      stub->GetStatus(&ctx, rcptguard::v1::GetStatusRequest(), &response);
  if (!status.ok()) return RpcFailed("GetStatus", status);
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s", ToJson(response).c_str());
    return 0;
  }
  using google::protobuf::util::TimeUtil;
  std::printf("server version   %s\n", response.server_version().c_str());
  std::printf("serving          %s\n", response.serving() ? "yes" : "no");
  if (response.harvest().has_shared()) {
    const auto& sh = response.harvest().shared();
    std::printf(
        "harvest shared   %s (%s), lag %.1f s, %llu errors, %llu dropped "
        "deltas%s%s\n",
        sh.state().c_str(), sh.address().c_str(), sh.lag_seconds(),
        static_cast<unsigned long long>(sh.errors()),
        static_cast<unsigned long long>(sh.dropped_deltas()),
        sh.last_error().empty() ? "" : ": ", sh.last_error().c_str());
  }
  if (!response.serving()) return 0;
  std::printf("directory        %s\n", response.directory_version().c_str());
  std::printf("source           %s\n", response.source().c_str());
  std::printf("loaded at        %s\n",
              TimeUtil::ToString(response.loaded_at()).c_str());
  std::printf("age              %.0f s%s\n", response.directory_age_seconds(),
              response.stale() ? "  (STALE: unknown recipients get 450)" : "");
  if (!response.last_reload().result().empty()) {
    const auto& r = response.last_reload();
    std::printf("last reload      %s (%s, %s)%s%s\n", r.result().c_str(),
                r.trigger().c_str(), TimeUtil::ToString(r.at()).c_str(),
                r.reason().empty() ? "" : ": ", r.message().c_str());
  }
  std::printf("addresses        %llu\n",
              static_cast<unsigned long long>(response.total_addresses()));
  const auto& load = response.load();
  std::printf(
      "load             %llu records, %llu included, %llu disabled excluded, "
      "%llu addresses in other domains skipped, %llu malformed, %.3f s\n",
      static_cast<unsigned long long>(load.records()),
      static_cast<unsigned long long>(load.included_entries()),
      static_cast<unsigned long long>(load.disabled_entries()),
      static_cast<unsigned long long>(load.addresses_not_served()),
      static_cast<unsigned long long>(load.addresses_malformed()),
      load.duration_seconds());
  std::printf("%-32s %-8s %12s  %s\n", "DOMAIN", "MODE", "ADDRESSES",
              "ALIASES");
  for (const auto& d : response.domains()) {
    std::printf(
        "%-32s %-8s %12llu  %s\n", d.name().c_str(),
        d.mode() == rcptguard::v1::DOMAIN_MODE_MONITOR ? "monitor" : "enforce",
        static_cast<unsigned long long>(d.addresses()),
        absl::StrJoin(d.aliases(), ",").c_str());
  }
  return 0;
}

int Offenders(const std::vector<char*>& args) {
  rcptguard::v1::ListOffendersRequest request;
  if (args.size() >= 3) {
    int n = 0;
    if (!absl::SimpleAtoi(args[2], &n) || n <= 0 || n > 1000) {
      std::fprintf(stderr, "rcptguard: offenders: N must be 1..1000\n");
      return 2;
    }
    request.set_limit(n);
  }
  auto stub = Admin::NewStub(Channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  rcptguard::v1::ListOffendersResponse response;
  grpc::Status status = stub->ListOffenders(&ctx, request, &response);
  if (!status.ok()) return RpcFailed("ListOffenders", status);
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s", ToJson(response).c_str());
    return 0;
  }
  // UNKNOWN..MALFORM: normal traffic; NULL-UNK: unknown recipients of
  // null-sender transactions; DISTINCT: estimated distinct unknown
  // recipients (both); CLIENTS: addresses with unknowns inside a network;
  // ACTION, RULE: the verdict for normal mail; NULL-SENDER: the verdict for
  // a null-sender transaction (ACTION/RULE), "-" when it is a plain ACCEPT.
  std::printf("%-40s %8s %8s %8s %8s %8s %8s %7s  %-10s %-20s %s\n", "CLIENT",
              "UNKNOWN", "VALID", "RELAY", "MALFORM", "NULL-UNK", "DISTINCT",
              "CLIENTS", "ACTION", "RULE", "NULL-SENDER");
  for (const auto& o : response.offenders()) {
    std::string action = VerdictActionName(o.verdict());
    if (o.observed_action() != o.verdict().action()) {
      absl::StrAppend(&action, " (observed ", ActionName(o.observed_action()),
                      ")");
    }
    const auto& null = o.null_sender_verdict();
    const std::string null_text =
        null.rule().empty()
            ? "-"
            : absl::StrCat(VerdictActionName(null), "/", null.rule());
    std::printf("%-40s %8u %8u %8u %8u %8u %8u %7u  %-10s %-20s %s\n",
                o.key().c_str(), o.unknown(), o.valid(), o.not_served(),
                o.malformed(), o.null_sender_unknown(), o.distinct_unknown(),
                o.distinct_clients(), action.c_str(),
                o.verdict().rule().c_str(), null_text.c_str());
  }
  return 0;
}

int Forget(const std::vector<char*>& args) {
  if (args.size() != 3) {
    std::fprintf(stderr, "usage: rcptguard forget IP|CIDR\n");
    return 2;
  }
  rcptguard::v1::ForgetClientRequest request;
  request.set_client(args[2]);
  auto stub = Admin::NewStub(Channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  rcptguard::v1::ForgetClientResponse response;
  grpc::Status status = stub->ForgetClient(&ctx, request, &response);
  if (!status.ok()) return RpcFailed("ForgetClient", status);
  std::printf("forgot %s: %llu tracked keys removed\n", args[2],
              static_cast<unsigned long long>(response.removed()));
  return 0;
}

int Reload() {
  rcptguard::v1::ReloadRequest request;
  request.set_force(absl::GetFlag(FLAGS_force));
  auto stub = Admin::NewStub(Channel());
  grpc::ClientContext ctx;
  // Loading a large snapshot takes seconds.
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(
                       std::max(absl::GetFlag(FLAGS_timeout_ms), 120000)));
  rcptguard::v1::ReloadResponse response;
  grpc::Status status = stub->Reload(&ctx, request, &response);
  if (!status.ok()) return RpcFailed("Reload", status);
  std::printf("%s %s (%llu addresses)\n",
              response.changed() ? "serving" : "unchanged, serving",
              response.directory_version().c_str(),
              static_cast<unsigned long long>(response.total_addresses()));
  return 0;
}

int Health() {
  auto stub = grpc::health::v1::Health::NewStub(Channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&ctx, request, &response);
  if (!status.ok()) return RpcFailed("Health.Check", status);
  const bool serving =
      response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                          response.status())
                          .c_str());
  return serving ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  rcptguard::InitCommandLine("rcptguard", TopUsage(), {"clients/cli/"});
  rcptguard::AcceptDashedFlagNames(argc, argv);
  const rcptguard::CommandLine line = rcptguard::ScanCommandLine(argc, argv);
  const std::string name = CommandName(line.positional);
  const Command* command = FindCommand(name);

  switch (rcptguard::FindHelpRequest(argc, argv)) {
    case rcptguard::HelpRequest::kNone:
      break;
    case rcptguard::HelpRequest::kVersion:
      std::printf("%s\n", rcptguard::VersionLine("rcptguard").c_str());
      return 0;
    case rcptguard::HelpRequest::kHelp:
    case rcptguard::HelpRequest::kHelpFull:
      if (command != nullptr) {
        std::printf("%s", CommandUsage(*command).c_str());
      } else if (name.rfind("snapshot", 0) == 0) {
        std::printf("%s", SnapshotUsage().c_str());
      } else if (rcptguard::FindHelpRequest(argc, argv) ==
                 rcptguard::HelpRequest::kHelpFull) {
        return rcptguard::HandleHelpAndVersion(argc, argv);
      } else {
        std::printf("%s\nconnection flags (every command but snapshot):\n%s",
                    TopUsage().c_str(),
                    rcptguard::DescribeFlags(ConnectionFlags()).c_str());
      }
      return 0;
  }
  if (command == nullptr) {
    if (name.empty()) {
      std::fprintf(stderr, "%s", TopUsage().c_str());
    } else if (name == "snapshot") {
      std::fprintf(stderr, "%s", SnapshotUsage().c_str());
    } else if (name.rfind("snapshot ", 0) == 0) {
      std::fprintf(stderr, "rcptguard snapshot: unknown subcommand '%s'\n%s",
                   line.positional[1].c_str(), SnapshotUsage().c_str());
    } else {
      std::fprintf(stderr, "rcptguard: unknown command '%s'\n%s", name.c_str(),
                   TopUsage().c_str());
    }
    return 2;
  }
  // A flag of another command is a mistake (e.g. `health --force`), not
  // something to ignore silently. Unknown flags are Abseil's to refuse.
  const std::vector<std::string> allowed = command->AllFlags();
  for (const std::string& flag : line.flags) {
    if (IsLibraryFlag(flag) || absl::FindCommandLineFlag(flag) == nullptr ||
        std::find(allowed.begin(), allowed.end(), flag) != allowed.end()) {
      continue;
    }
    std::fprintf(
        stderr,
        "rcptguard %s: --%s does not apply to this command; its "
        "flags: %s (rcptguard %s --help)\n",
        name.c_str(), flag.c_str(),
        allowed.empty()
            ? "none"
            : absl::StrCat("--", absl::StrJoin(allowed, ", --")).c_str(),
        name.c_str());
    return 2;
  }

  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (name.rfind("snapshot ", 0) == 0) {
    return rcptguard::cli::RunSnapshotCommand(args);
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      rcptguard::client::MakeChannel(Options());
  if (!channel.ok()) {
    std::fprintf(stderr, "rcptguard: %s\n",
                 std::string(channel.status().message()).c_str());
    return 2;
  }
  ChannelSlot() = *std::move(channel);
  if (name == "check") return Check(args);
  if (name == "status") return Status();
  if (name == "health") return Health();
  if (name == "offenders") return Offenders(args);
  if (name == "forget") return Forget(args);
  if (name == "reload") return Reload();
  return 2;
}
