#include "core/rpc/service.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vrpc {
namespace rpc {

absl::Status Service::RunInline(absl::string_view name) {
  for (const std::unique_ptr<Method>& m : methods_) {
    const absl::string_view full = m->name;
    const bool match = full == name || (!absl::StartsWith(name, "/") &&
                                        absl::EndsWith(full, absl::StrCat("/", name)));
    if (!match) continue;
    if (m->kind != MethodKind::kUnary) {
      return absl::InvalidArgumentError(
          absl::StrCat("method ", full, " streams: only unary handlers can run inline"));
    }
    m->run_inline = true;
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no method ", name, " in this service"));
}

}  // namespace rpc
}  // namespace vrpc
