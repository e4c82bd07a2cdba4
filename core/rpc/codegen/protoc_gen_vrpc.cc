// protoc-gen-vrpc: generates vrpc service base classes and client stubs from
// the services of a .proto file, in the shape of gRPC C++'s sync API.
//
// For x.proto with `package a.b; service Echo { rpc Say(Req) returns (Resp); }`
// it writes x.vrpc.pb.h / x.vrpc.pb.cc declaring, in namespace a::b,
//
//   class Echo {
//    public:
//     static constexpr const char* service_full_name();   // "a.b.Echo"
//     class Stub;     // Say(ctx, req, &resp), AsyncSay(...), and for streams
//                     // ClientReader / ClientWriter / ClientReaderWriter
//     class Service;  // derive, override Say(ctx, req, resp); register on a Server
//   };
//
// The runtime it targets is core/rpc/stub.h. Messages come from protobuf's
// own C++ generator (x.pb.h).
#include <map>
#include <memory>
#include <string>

#include <google/protobuf/compiler/code_generator.h>
#include <google/protobuf/compiler/plugin.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/printer.h>
#include <google/protobuf/io/zero_copy_stream.h>

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;
using google::protobuf::compiler::GeneratorContext;
using google::protobuf::io::Printer;
using Vars = std::map<std::string, std::string>;

std::string StripProto(const std::string& name) {
  return name.substr(0, name.size() - std::string(".proto").size());
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// The C++ class protobuf generates for |d|: nested types are joined by "_".
std::string ClassName(const Descriptor* d) {
  std::string name = d->name();
  for (const Descriptor* p = d->containing_type(); p != nullptr; p = p->containing_type()) {
    name = p->name() + "_" + name;
  }
  return name;
}

std::string QualifiedClass(const Descriptor* d) {
  const std::string ns = Replace(d->file()->package(), ".", "::");
  return ns.empty() ? "::" + ClassName(d) : "::" + ns + "::" + ClassName(d);
}

Vars MethodVars(const ServiceDescriptor* service, const MethodDescriptor* m) {
  return {{"Method", m->name()},
          {"Req", QualifiedClass(m->input_type())},
          {"Resp", QualifiedClass(m->output_type())},
          {"path", "/" + service->full_name() + "/" + m->name()}};
}

void OpenNamespace(Printer& p, const std::string& package) {
  if (package.empty()) return;
  p.Print("namespace $ns$ {\n", "ns", Replace(package, ".", "::"));
}

void CloseNamespace(Printer& p, const std::string& package) {
  if (package.empty()) return;
  p.Print("}  // namespace $ns$\n", "ns", Replace(package, ".", "::"));
}

void PrintStub(Printer& p, const ServiceDescriptor* service) {
  p.Print(
      "  // Client side; thread-safe, cheap to create (the Channel is shared).\n"
      "  class Stub {\n"
      "   public:\n"
      "    explicit Stub(std::shared_ptr<::vrpc::rpc::Channel> channel)\n"
      "        : channel_(std::move(channel)) {}\n\n");
  p.Indent();
  p.Indent();
  for (int i = 0; i < service->method_count(); ++i) {
    const MethodDescriptor* m = service->method(i);
    const Vars v = MethodVars(service, m);
    if (!m->client_streaming() && !m->server_streaming()) {
      p.Print(v,
              "::absl::Status $Method$(::vrpc::rpc::ClientContext* context, const $Req$& request,\n"
              "                        $Resp$* response) {\n"
              "  return ::vrpc::rpc::UnaryCall(channel_, \"$path$\", context, request, response);\n"
              "}\n"
              "// |done| runs on the channel's reactor thread.\n"
              "void Async$Method$(::vrpc::rpc::ClientContext* context, const $Req$& request,\n"
              "                   $Resp$* response, std::function<void(::absl::Status)> done) {\n"
              "  ::vrpc::rpc::AsyncUnaryCall(channel_, \"$path$\", context, request, response,\n"
              "                              std::move(done));\n"
              "}\n");
    } else if (!m->client_streaming()) {
      p.Print(v,
              "std::unique_ptr<::vrpc::rpc::ClientReader<$Resp$>> $Method$(\n"
              "    ::vrpc::rpc::ClientContext* context, const $Req$& request) {\n"
              "  return std::make_unique<::vrpc::rpc::ClientReader<$Resp$>>(channel_, \"$path$\",\n"
              "                                                              context, request);\n"
              "}\n"
              "// Callback API: starts the call on |reactor| (core/rpc/reactors.h).\n"
              "void $Method$(::vrpc::rpc::ClientContext* context, const $Req$& request,\n"
              "              ::vrpc::rpc::ClientReadReactor<$Resp$>* reactor) {\n"
              "  reactor->StartCall(channel_, \"$path$\", context, request);\n"
              "}\n");
    } else if (!m->server_streaming()) {
      p.Print(v,
              "std::unique_ptr<::vrpc::rpc::ClientWriter<$Req$>> $Method$(\n"
              "    ::vrpc::rpc::ClientContext* context, $Resp$* response) {\n"
              "  return std::make_unique<::vrpc::rpc::ClientWriter<$Req$>>(channel_, \"$path$\",\n"
              "                                                             context, response);\n"
              "}\n"
              "// Callback API: starts the call on |reactor| (core/rpc/reactors.h).\n"
              "void $Method$(::vrpc::rpc::ClientContext* context, $Resp$* response,\n"
              "              ::vrpc::rpc::ClientWriteReactor<$Req$, $Resp$>* reactor) {\n"
              "  reactor->StartCall(channel_, \"$path$\", context, response);\n"
              "}\n");
    } else {
      p.Print(v,
              "std::unique_ptr<::vrpc::rpc::ClientReaderWriter<$Req$, $Resp$>> $Method$(\n"
              "    ::vrpc::rpc::ClientContext* context) {\n"
              "  return std::make_unique<::vrpc::rpc::ClientReaderWriter<$Req$, $Resp$>>(\n"
              "      channel_, \"$path$\", context);\n"
              "}\n"
              "// Callback API: starts the call on |reactor| (core/rpc/reactors.h).\n"
              "void $Method$(::vrpc::rpc::ClientContext* context,\n"
              "              ::vrpc::rpc::ClientBidiReactor<$Req$, $Resp$>* reactor) {\n"
              "  reactor->StartCall(channel_, \"$path$\", context);\n"
              "}\n");
    }
    p.Print("\n");
  }
  p.Outdent();
  p.Print(" private:\n  std::shared_ptr<::vrpc::rpc::Channel> channel_;\n");
  p.Outdent();
  p.Print("  };\n\n");
}

void PrintServiceDecl(Printer& p, const ServiceDescriptor* service) {
  p.Print(
      "  // Server side: derive, override the methods you serve (the others\n"
      "  // answer UNIMPLEMENTED), and register an instance with\n"
      "  // ::vrpc::rpc::Server::RegisterService. Methods run on worker threads\n"
      "  // (or on the reactor: ::vrpc::rpc::Service::RunInline, ServeOnReactor).\n"
      "  class Service : public ::vrpc::rpc::Service {\n"
      "   public:\n"
      "    Service();\n"
      "    ~Service() override = default;\n\n");
  p.Indent();
  p.Indent();
  for (int i = 0; i < service->method_count(); ++i) {
    const MethodDescriptor* m = service->method(i);
    const Vars v = MethodVars(service, m);
    if (!m->client_streaming() && !m->server_streaming()) {
      p.Print(v,
              "virtual ::absl::Status $Method$(::vrpc::rpc::ServerContext* context,\n"
              "                                const $Req$* request, $Resp$* response);\n");
    } else if (!m->client_streaming()) {
      p.Print(v,
              "virtual ::absl::Status $Method$(::vrpc::rpc::ServerContext* context,\n"
              "                                const $Req$* request,\n"
              "                                ::vrpc::rpc::ServerWriter<$Resp$>* writer);\n");
    } else if (!m->server_streaming()) {
      p.Print(v,
              "virtual ::absl::Status $Method$(::vrpc::rpc::ServerContext* context,\n"
              "                                ::vrpc::rpc::ServerReader<$Req$>* reader,\n"
              "                                $Resp$* response);\n");
    } else {
      p.Print(v,
              "virtual ::absl::Status $Method$(\n"
              "    ::vrpc::rpc::ServerContext* context,\n"
              "    ::vrpc::rpc::ServerReaderWriter<$Resp$, $Req$>* stream);\n");
    }
  }
  p.Outdent();
  p.Outdent();
  p.Print("  };\n");
}

void PrintServiceDefs(Printer& p, const ServiceDescriptor* service) {
  const std::string cls = service->name() + "::Service";
  p.Print("$cls$::Service() {\n", "cls", cls);
  p.Indent();
  for (int i = 0; i < service->method_count(); ++i) {
    const MethodDescriptor* m = service->method(i);
    const Vars v = MethodVars(service, m);
    if (!m->client_streaming() && !m->server_streaming()) {
      p.Print(v,
              "AddMethod(\"$path$\", ::vrpc::rpc::MethodKind::kUnary,\n"
              "          ::vrpc::rpc::UnaryHandler<$Req$, $Resp$>(\n"
              "              [this](::vrpc::rpc::ServerContext* c, const $Req$& req, $Resp$* resp) {\n"
              "                return $Method$(c, &req, resp);\n"
              "              }));\n");
    } else if (!m->client_streaming()) {
      p.Print(v,
              "AddMethod(\"$path$\", ::vrpc::rpc::MethodKind::kServerStreaming,\n"
              "          ::vrpc::rpc::ServerStreamingHandler<$Req$, $Resp$>(\n"
              "              [this](::vrpc::rpc::ServerContext* c, const $Req$& req,\n"
              "                     ::vrpc::rpc::ServerWriter<$Resp$>* w) {\n"
              "                return $Method$(c, &req, w);\n"
              "              }));\n");
    } else if (!m->server_streaming()) {
      p.Print(v,
              "AddMethod(\"$path$\", ::vrpc::rpc::MethodKind::kClientStreaming,\n"
              "          ::vrpc::rpc::ClientStreamingHandler<$Req$, $Resp$>(\n"
              "              [this](::vrpc::rpc::ServerContext* c,\n"
              "                     ::vrpc::rpc::ServerReader<$Req$>* r, $Resp$* resp) {\n"
              "                return $Method$(c, r, resp);\n"
              "              }));\n");
    } else {
      p.Print(v,
              "AddMethod(\"$path$\", ::vrpc::rpc::MethodKind::kBidiStreaming,\n"
              "          ::vrpc::rpc::BidiStreamingHandler<$Req$, $Resp$>(\n"
              "              [this](::vrpc::rpc::ServerContext* c,\n"
              "                     ::vrpc::rpc::ServerReaderWriter<$Resp$, $Req$>* s) {\n"
              "                return $Method$(c, s);\n"
              "              }));\n");
    }
  }
  p.Outdent();
  p.Print("}\n\n");
  for (int i = 0; i < service->method_count(); ++i) {
    const MethodDescriptor* m = service->method(i);
    Vars v = MethodVars(service, m);
    v["cls"] = cls;
    if (!m->client_streaming() && !m->server_streaming()) {
      v["params"] = "::vrpc::rpc::ServerContext*, const " + v["Req"] + "*, " + v["Resp"] + "*";
    } else if (!m->client_streaming()) {
      v["params"] = "::vrpc::rpc::ServerContext*, const " + v["Req"] + "*, ::vrpc::rpc::ServerWriter<" +
                    v["Resp"] + ">*";
    } else if (!m->server_streaming()) {
      v["params"] = "::vrpc::rpc::ServerContext*, ::vrpc::rpc::ServerReader<" + v["Req"] + ">*, " +
                    v["Resp"] + "*";
    } else {
      v["params"] = "::vrpc::rpc::ServerContext*, ::vrpc::rpc::ServerReaderWriter<" + v["Resp"] +
                    ", " + v["Req"] + ">*";
    }
    p.Print(v,
            "::absl::Status $cls$::$Method$($params$) {\n"
            "  return ::absl::UnimplementedError(\"$path$ is not implemented\");\n"
            "}\n\n");
  }
}

class Generator : public google::protobuf::compiler::CodeGenerator {
 public:
  bool Generate(const FileDescriptor* file, const std::string& parameter,
                GeneratorContext* context, std::string* error) const override {
    if (!parameter.empty()) {
      *error = "protoc-gen-vrpc takes no parameters";
      return false;
    }
    const std::string stem = StripProto(file->name());
    const std::string guard =
        "VRPC_GENERATED_" + Replace(Replace(Replace(stem, "/", "_"), ".", "_"), "-", "_") + "_VRPC_PB_H_";
    {
      std::unique_ptr<google::protobuf::io::ZeroCopyOutputStream> out(
          context->Open(stem + ".vrpc.pb.h"));
      Printer p(out.get(), '$');
      p.Print(
          "// Generated by protoc-gen-vrpc from $file$. DO NOT EDIT.\n"
          "#ifndef $guard$\n#define $guard$\n\n"
          "#include <functional>\n#include <memory>\n#include <utility>\n\n"
          "#include \"$stem$.pb.h\"\n"
          "#include \"absl/status/status.h\"\n"
          "#include \"core/rpc/reactors.h\"\n"
          "#include \"core/rpc/stub.h\"\n\n",
          "file", file->name(), "guard", guard, "stem", stem);
      OpenNamespace(p, file->package());
      for (int i = 0; i < file->service_count(); ++i) {
        const ServiceDescriptor* s = file->service(i);
        p.Print("\nclass $name$ final {\n public:\n", "name", s->name());
        p.Print("  static constexpr const char* service_full_name() { return \"$full$\"; }\n\n",
                "full", s->full_name());
        PrintStub(p, s);
        PrintServiceDecl(p, s);
        p.Print("};\n");
      }
      p.Print("\n");
      CloseNamespace(p, file->package());
      p.Print("\n#endif  // $guard$\n", "guard", guard);
    }
    {
      std::unique_ptr<google::protobuf::io::ZeroCopyOutputStream> out(
          context->Open(stem + ".vrpc.pb.cc"));
      Printer p(out.get(), '$');
      p.Print("// Generated by protoc-gen-vrpc from $file$. DO NOT EDIT.\n"
              "#include \"$stem$.vrpc.pb.h\"\n\n",
              "file", file->name(), "stem", stem);
      OpenNamespace(p, file->package());
      p.Print("\n");
      for (int i = 0; i < file->service_count(); ++i) PrintServiceDefs(p, file->service(i));
      CloseNamespace(p, file->package());
    }
    return true;
  }
};

}  // namespace

int main(int argc, char** argv) {
  Generator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}
