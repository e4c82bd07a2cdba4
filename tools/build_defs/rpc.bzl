"""vrpc_rpc_library: messages and vrpc services from .proto files.

    load("//tools/build_defs:rpc.bzl", "vrpc_rpc_library")

    vrpc_rpc_library(
        name = "echo_proto",
        srcs = ["echo.proto"],
    )

creates :echo_proto (protobuf messages, #include "pkg/echo.pb.h") and
:echo_proto_vrpc (services and stubs from protoc-gen-vrpc,
#include "pkg/echo.vrpc.pb.h"), both built offline with Debian's protoc.
"""

load("//tools/build_defs:proto.bzl", "vrpc_cc_proto_library")

def vrpc_rpc_library(name, srcs, deps = [], visibility = None, **kwargs):
    vrpc_cc_proto_library(
        name = name,
        srcs = srcs,
        deps = deps,
        plugin = "//core/rpc/codegen:protoc-gen-vrpc",
        plugin_out_suffixes = [".vrpc.pb.h", ".vrpc.pb.cc"],
        plugin_deps = [
            "//core/rpc:stub",
            "//core/rpc:client",
            "//core/rpc:server",
            "//third_party:absl",
        ],
        visibility = visibility,
        **kwargs
    )
