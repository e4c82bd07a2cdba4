// File: core/base/status_macros.h
//
// Early-return helpers for absl::Status / absl::StatusOr<T>. Debian 12's Abseil
// (20220623) predates absl/status/status_macros.h, so vrpc carries its own,
// shaped like the upstream ones so a later switch is mechanical.
//
//   absl::Status Load() {
//     VRPC_RETURN_IF_ERROR(Open());
//     VRPC_ASSIGN_OR_RETURN(Header h, ParseHeader(bytes));
//     ...
//   }
#ifndef VRPC_CORE_BASE_STATUS_MACROS_H_
#define VRPC_CORE_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates |expr|, which must yield an absl::Status, and returns it from the
// enclosing function if it is not OK.
#define VRPC_RETURN_IF_ERROR(expr)                              \
  do {                                                          \
    ::absl::Status vrpc_status_macro_value = (expr);            \
    if (ABSL_PREDICT_FALSE(!vrpc_status_macro_value.ok())) {    \
      return vrpc_status_macro_value;                           \
    }                                                           \
  } while (false)

// Evaluates |rexpr|, which must yield an absl::StatusOr<T>. On error returns
// the status from the enclosing function; otherwise moves the value into
// |lhs|, which may be a declaration (`auto x`, `Header h`) or an lvalue.
#define VRPC_ASSIGN_OR_RETURN(lhs, rexpr)                                     \
  VRPC_ASSIGN_OR_RETURN_IMPL_(                                                \
      VRPC_STATUS_MACROS_CONCAT_(vrpc_statusor_, __LINE__), lhs, rexpr)

#define VRPC_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) {               \
    return std::move(statusor).status();                  \
  }                                                       \
  lhs = *std::move(statusor)

#define VRPC_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define VRPC_STATUS_MACROS_CONCAT_(x, y) VRPC_STATUS_MACROS_CONCAT_INNER_(x, y)

#endif  // VRPC_CORE_BASE_STATUS_MACROS_H_
