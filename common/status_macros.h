// Status propagation helpers.
//
// Abseil 20220623 ships no RETURN_IF_ERROR / ASSIGN_OR_RETURN, so these are
// ours. They only ever forward an absl::Status; nothing here throws.
//
//   absl::Status Load(...) {
//     RG_RETURN_IF_ERROR(Check(x));
//     RG_ASSIGN_OR_RETURN(auto parsed, Parse(y));
//     ...
//   }
#ifndef RCPTGUARD_COMMON_STATUS_MACROS_H_
#define RCPTGUARD_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RG_STATUS_CONCAT_INNER_(a, b) a##b
#define RG_STATUS_CONCAT_(a, b) RG_STATUS_CONCAT_INNER_(a, b)

#define RG_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status rg_status_ = (expr);      \
    if (!rg_status_.ok()) return rg_status_; \
  } while (0)

#define RG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(*tmp)

#define RG_ASSIGN_OR_RETURN(lhs, expr)                                      \
  RG_ASSIGN_OR_RETURN_IMPL_(RG_STATUS_CONCAT_(rg_statusor_, __LINE__), lhs, \
                            expr)

#endif  // RCPTGUARD_COMMON_STATUS_MACROS_H_
