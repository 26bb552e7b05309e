// RecipientResult: the client library's answer for one recipient, with the
// failure policy already applied (clients/cpp/client.h explains how a
// Client produces it). A header of its own, without gRPC, so that code that
// only maps answers to a protocol (the Postfix policy and socketmap
// formatting, their tests and fuzz targets) needs no gRPC.
//
// Thread safety: a plain value type; copies are independent.
#ifndef RCPTGUARD_CLIENTS_CPP_RECIPIENT_RESULT_H_
#define RCPTGUARD_CLIENTS_CPP_RECIPIENT_RESULT_H_

#include <string>

#include "absl/status/status.h"
#include "rcptguard/v1/validation.pb.h"

namespace rcptguard::client {

// The answer for one recipient.
struct RecipientResult {
  enum class Source {
    // The service answered: `verdict` and `client` are set.
    kService,
    // No answer; the failure policy is fail_open: treat as "no opinion".
    kFailOpen,
    // No answer; the failure policy is tempfail: defer the recipient.
    kTempfail,
    // The server refused the request as invalid (INVALID_ARGUMENT: e.g. a
    // recipient longer than limits.max_address_length): the recipient is
    // bad, the service is fine. Answer it as a malformed address (SMTP
    // 501 5.1.3); `error` says why. Never a fail-open.
    kInvalid,
  };
  Source source = Source::kFailOpen;
  v1::RecipientVerdict verdict;
  // The client (harvest) verdict of the request the recipient went in.
  v1::ClientVerdict client;
  std::string directory_version;
  // Why there is no answer (OK when source == kService).
  absl::Status error;
  // Recipients in the Validate that answered (1 when not merged).
  int batch_size = 0;
};

}  // namespace rcptguard::client

#endif  // RCPTGUARD_CLIENTS_CPP_RECIPIENT_RESULT_H_
