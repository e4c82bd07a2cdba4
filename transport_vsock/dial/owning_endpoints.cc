// File: transport_vsock/dial/owning_endpoints.cc
#include "transport_vsock/dial/owning_endpoints.h"

#include <string>
#include <utility>

namespace vrpc {
namespace dial {
namespace {

// |inner| and the reference that keeps its transport alive, destroyed in
// that order; the reference goes on a later reactor turn if it is the last.
template <typename Inner>
class Owned {
 public:
  Owned(std::unique_ptr<Inner> inner, std::shared_ptr<void> owner)
      : inner_(std::move(inner)), owner_(std::move(owner)) {}
  ~Owned() {
    io::Reactor& reactor = inner_->reactor();
    inner_.reset();
    if (owner_.use_count() > 1) return;  // not the last: dropping it is enough
    reactor.Post([owner = std::move(owner_)]() mutable { owner.reset(); });
  }
  Inner* operator->() const { return inner_.get(); }
  const std::shared_ptr<void>& owner() const { return owner_; }

 private:
  std::unique_ptr<Inner> inner_;
  std::shared_ptr<void> owner_;
};

class Connection final : public transport::Connection {
 public:
  Connection(std::unique_ptr<transport::Connection> inner, std::shared_ptr<void> owner)
      : c_(std::move(inner), std::move(owner)) {}

  io::Reactor& reactor() override { return c_->reactor(); }
  void SetEventHandler(EventHandler handler) override { c_->SetEventHandler(std::move(handler)); }
  transport::ConnectionState state() const override { return c_->state(); }
  absl::Status status() const override { return c_->status(); }
  absl::StatusOr<SliceChain> Read(size_t max) override { return c_->Read(max); }
  bool AtEof() const override { return c_->AtEof(); }
  absl::StatusOr<size_t> Write(SliceChain& data) override { return c_->Write(data); }
  Slice AllocateWriteBuffer(size_t size, uint8_t** data) override {
    return c_->AllocateWriteBuffer(size, data);
  }
  transport::WriteBufferAllocator write_buffer_allocator() override {
    return c_->write_buffer_allocator();
  }
  absl::Status ShutdownWrite() override { return c_->ShutdownWrite(); }
  void Close() override { c_->Close(); }
  transport::CreditInfo credit() const override { return c_->credit(); }
  transport::ConnectionStats stats() const override { return c_->stats(); }
  std::string peer_address() const override { return c_->peer_address(); }

 private:
  Owned<transport::Connection> c_;
};

class Listener final : public transport::Listener {
 public:
  Listener(std::unique_ptr<transport::Listener> inner, std::shared_ptr<void> owner)
      : l_(std::move(inner), std::move(owner)) {}

  io::Reactor& reactor() override { return l_->reactor(); }
  void SetAcceptHandler(AcceptHandler handler) override {
    l_->SetAcceptHandler([handler = std::move(handler), owner = l_.owner()](
                             std::unique_ptr<transport::Connection> c) mutable {
      handler(std::make_unique<Connection>(std::move(c), owner));
    });
  }
  std::string address() const override { return l_->address(); }

 private:
  Owned<transport::Listener> l_;
};

class Connector final : public transport::Connector {
 public:
  Connector(std::unique_ptr<transport::Connector> inner, std::shared_ptr<void> owner)
      : c_(std::move(inner), std::move(owner)) {}

  io::Reactor& reactor() override { return c_->reactor(); }
  absl::StatusOr<std::unique_ptr<transport::Connection>> Connect() override {
    auto c = c_->Connect();
    if (!c.ok()) return c.status();
    return std::unique_ptr<transport::Connection>(
        std::make_unique<Connection>(*std::move(c), c_.owner()));
  }
  std::string address() const override { return c_->address(); }

 private:
  Owned<transport::Connector> c_;
};

}  // namespace

std::unique_ptr<transport::Listener> OwningListener(std::unique_ptr<transport::Listener> inner,
                                                   std::shared_ptr<void> owner) {
  return std::make_unique<Listener>(std::move(inner), std::move(owner));
}

std::unique_ptr<transport::Connector> OwningConnector(std::unique_ptr<transport::Connector> inner,
                                                     std::shared_ptr<void> owner) {
  return std::make_unique<Connector>(std::move(inner), std::move(owner));
}

}  // namespace dial
}  // namespace vrpc
