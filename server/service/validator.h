// The request path of RecipientValidation, free of gRPC: checks a
// ValidateRequest against the limits, looks its recipients up in the served
// directory (one directory snapshot per request), and fills the response
// with one verdict per recipient and the SMTP reply for each.
//
// Thread safety: Validate() is safe to call concurrently from any number of
// threads; the Validator itself is constant after construction.
#ifndef RCPTGUARD_SERVER_SERVICE_VALIDATOR_H_
#define RCPTGUARD_SERVER_SERVICE_VALIDATOR_H_

#include <cstdint>

#include "absl/status/status.h"
#include "rcptguard/v1/config.pb.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/directory/directory_handle.h"

namespace rcptguard::service {

// Default replies (RFC 3463 enhanced status codes).
inline constexpr char kValidText[] = "Recipient OK";
inline constexpr char kUnknownText[] = "User unknown";
inline constexpr char kNotServedText[] = "Relay access denied";
inline constexpr char kMalformedText[] = "Bad recipient address syntax";

class Validator {
 public:
  // `handle` must outlive the Validator.
  Validator(const v1::ServerConfig& config,
            const directory::DirectoryHandle* handle);

  // Errors: InvalidArgument for a request over the limits (naming the
  // limit and the offending field), Unavailable when no directory is loaded
  // yet. On error `response` is left unspecified.
  absl::Status Validate(const v1::ValidateRequest& request,
                        v1::ValidateResponse* response) const;

 private:
  // Constant after construction.
  const directory::DirectoryHandle* const handle_;
  const uint32_t max_recipients_;
  const uint32_t max_address_length_;
  const v1::ReplyTexts default_replies_;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_VALIDATOR_H_
