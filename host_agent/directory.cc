// File: host_agent/directory.cc
#include "host_agent/directory.h"

#include <cctype>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/transport/address.h"
#include "transport_vsock/dial/dial.h"

namespace vrpc {
namespace host_agent {
namespace {

bool GoodName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

Directory::~Directory() { Shutdown(); }

absl::Status Directory::Add(const std::string& name, const std::string& address) {
  if (!GoodName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("VM name \"", name, "\": use letters, digits, '-', '_' and '.'"));
  }
  if (absl::StatusOr<transport::Address> a = transport::ParseAddress(address); !a.ok()) {
    return a.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!addresses_.emplace(name, address).second) {
    return absl::AlreadyExistsError(absl::StrCat("VM name \"", name, "\" given twice"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<rpc::Channel>> Directory::Channel(const std::string& name) {
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return absl::UnavailableError("the host agent is shutting down");
    if (auto it = channels_.find(name); it != channels_.end()) return it->second;
    auto it = addresses_.find(name);
    if (it == addresses_.end()) {
      std::vector<std::string> known;
      for (const auto& [n, a] : addresses_) known.push_back(n);
      return absl::NotFoundError(absl::StrCat("no VM named \"", name, "\" (known: ",
                                              known.empty() ? "none" : absl::StrJoin(known, ", "),
                                              ")"));
    }
    address = it->second;
  }
  std::promise<absl::StatusOr<std::shared_ptr<rpc::Channel>>> made;
  reactor_.Post([&] {
    auto connector = dial::Dial(address, reactor_);
    if (!connector.ok()) {
      made.set_value(connector.status());
      return;
    }
    made.set_value(rpc::Channel::Create(*std::move(connector)));
  });
  absl::StatusOr<std::shared_ptr<rpc::Channel>> channel = made.get_future().get();
  if (!channel.ok()) return channel.status();
  std::shared_ptr<rpc::Channel> result, spare;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = channels_.emplace(name, *channel);
    result = it->second;
    if (!inserted) spare = *channel;  // another thread won the race
  }
  if (spare != nullptr) spare->Shutdown();
  return result;
}

std::vector<std::string> Directory::names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [n, a] : addresses_) out.push_back(n);
  return out;
}

std::string Directory::address(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = addresses_.find(name);
  return it == addresses_.end() ? "" : it->second;
}

void Directory::Shutdown() {
  std::map<std::string, std::shared_ptr<rpc::Channel>> channels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    channels.swap(channels_);
  }
  for (auto& [name, channel] : channels) channel->Shutdown();
}

}  // namespace host_agent
}  // namespace vrpc
