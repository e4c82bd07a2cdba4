#include "core/rpc/service.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vrpc {
namespace rpc {

Service::Method* Service::Find(absl::string_view name) {
  for (const std::unique_ptr<Method>& m : methods_) {
    const absl::string_view full = m->name;
    if (full == name || (!absl::StartsWith(name, "/") &&
                         absl::EndsWith(full, absl::StrCat("/", name)))) {
      return m.get();
    }
  }
  return nullptr;
}

absl::Status Service::RunInline(absl::string_view name) {
  Method* m = Find(name);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("no method ", name, " in this service"));
  }
  if (m->kind != MethodKind::kUnary) {
    return absl::InvalidArgumentError(
        absl::StrCat("method ", m->name, " streams: only unary handlers can run inline"));
  }
  m->run_inline = true;
  return absl::OkStatus();
}

absl::Status Service::ServeOnReactor(absl::string_view name, ReactorFactory factory) {
  Method* m = Find(name);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("no method ", name, " in this service"));
  }
  if (!factory) return absl::InvalidArgumentError("no reactor factory");
  m->reactor = std::move(factory);
  return absl::OkStatus();
}

}  // namespace rpc
}  // namespace vrpc
