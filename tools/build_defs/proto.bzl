"""vrpc_cc_proto_library: C++ code from .proto files with the system protoc.

    load("//tools/build_defs:proto.bzl", "vrpc_cc_proto_library")

    vrpc_cc_proto_library(
        name = "echo_proto",
        srcs = ["echo.proto"],
        deps = ["//proto:common_proto"],      # other vrpc_cc_proto_library targets
        grpc = True,                          # also emit gRPC stubs
        plugin = "//core/rpc/codegen:protoc-gen-vrpc",
        plugin_out_suffixes = [".vrpc.pb.h", ".vrpc.pb.cc"],
        plugin_deps = ["//core/rpc:service"],  # runtime the plugin's code needs
    )

Everything runs offline with Debian's /usr/bin/protoc (libprotobuf 3.21) and
/usr/bin/grpc_cpp_plugin; nothing is downloaded.

Import paths and include paths are relative to the workspace root, whatever
the package depth: a file a/b/c/foo.proto is imported as
`import "a/b/c/foo.proto";` and its code is included as
`#include "a/b/c/foo.pb.h"` (and "a/b/c/foo.grpc.pb.h", "a/b/c/foo.vrpc.pb.h").
Protobuf's well-known types (`import "google/protobuf/timestamp.proto";`)
come from /usr/include and need no dep.

Targets created, for name = N:

  N_protos    filegroup: `srcs` plus the .proto files of all `deps`,
              transitively. protoc needs them to resolve imports. A dep is
              referred to by its cc_library label; the macro derives the
              filegroup label from it, so deps must be vrpc_cc_proto_library
              targets.
  N_gen       genrule running protoc with --cpp_out (and, if grpc, --grpc_out
              with protoc-gen-grpc=/usr/bin/grpc_cpp_plugin). Outputs, for
              each src x.proto: x.pb.h, x.pb.cc (+ x.grpc.pb.h, x.grpc.pb.cc).
  N           cc_library of the generated code. Depends on `deps`,
              //third_party:protobuf and, if grpc, //third_party:grpc++.

  With `plugin` set (an extra protoc plugin built in this repository, e.g.
  a cc_binary named protoc-gen-vrpc), also:

  N_<p>_gen   genrule running protoc with --plugin=protoc-gen-<p>=<plugin>
              and --<p>_out. For each src x.proto it must write exactly
              x<suffix> for every suffix in `plugin_out_suffixes`.
  N_<p>       cc_library of those files (suffixes ending in .h/.hh/.hpp/.inc
              are headers, the rest sources). Depends on N and
              `plugin_deps`.

  <p> is `plugin_name`, by default the plugin target's name without its
  "protoc-gen-" prefix: plugin = "//core/rpc/codegen:protoc-gen-vrpc" gives
  N_vrpc. The plugin is built for the host and run by protoc; it may take a
  parameter string via `plugin_options` (passed as --<p>_opt).

Limitations: `srcs` must be source files of the package (not generated
files); the generated code uses the default toolchain flags, not VRPC_COPTS.
"""

_PROTOC = "/usr/bin/protoc"
_GRPC_CPP_PLUGIN = "/usr/bin/grpc_cpp_plugin"

def _proto_files_label(dep):
    """Maps a vrpc_cc_proto_library label to its N_protos filegroup."""
    if dep.startswith(":"):
        return dep + "_protos"
    if dep.startswith("//") or dep.startswith("@"):
        if ":" in dep:
            return dep + "_protos"

        # //a/b is //a/b:b
        return dep + ":" + dep.split("/")[-1] + "_protos"

    # A bare relative name, "foo".
    if ":" in dep:
        fail("unexpected label %r in deps" % dep)
    return ":" + dep + "_protos"

def _label_name(label):
    if ":" in label:
        return label.split(":")[-1]
    return label.split("/")[-1]

def _stem(src):
    if not src.endswith(".proto"):
        fail("vrpc_cc_proto_library: %r is not a .proto file" % src)
    if src.startswith(":") or src.startswith("//") or src.startswith("@"):
        fail("vrpc_cc_proto_library: srcs must be plain file names in " +
             "this package, got %r" % src)
    return src[:-len(".proto")]

def _is_header(path):
    for ext in (".h", ".hh", ".hpp", ".inc"):
        if path.endswith(ext):
            return True
    return False

def vrpc_cc_proto_library(
        name,
        srcs,
        deps = [],
        grpc = False,
        plugin = None,
        plugin_out_suffixes = [],
        plugin_name = None,
        plugin_options = None,
        plugin_deps = [],
        testonly = False,
        tags = [],
        visibility = None):
    """C++ (and optionally gRPC / custom-plugin) code for .proto files.

    Args:
      name: name of the cc_library with the protobuf (and gRPC) code.
      srcs: .proto files in this package.
      deps: other vrpc_cc_proto_library targets whose .proto files `srcs`
          import.
      grpc: also generate gRPC C++ stubs (x.grpc.pb.h / x.grpc.pb.cc).
      plugin: label of an extra protoc plugin executable (a cc_binary).
      plugin_out_suffixes: suffixes of the files the plugin writes per .proto,
          e.g. [".vrpc.pb.h", ".vrpc.pb.cc"]. Required with `plugin`.
      plugin_name: protoc's name for the plugin (default: the plugin target's
          name without "protoc-gen-"). Also names the extra cc_library.
      plugin_options: optional parameter string for the plugin (--<p>_opt).
      plugin_deps: libraries the plugin's generated code needs.
      testonly: as for any rule.
      tags: added to every generated target.
      visibility: visibility of the cc_libraries and the N_protos filegroup.
    """
    stems = [_stem(s) for s in srcs]

    native.filegroup(
        name = name + "_protos",
        srcs = srcs + [_proto_files_label(d) for d in deps],
        testonly = testonly,
        tags = tags,
        visibility = visibility,
    )

    hdrs = []
    cc_srcs = []
    for stem in stems:
        hdrs.append(stem + ".pb.h")
        cc_srcs.append(stem + ".pb.cc")
        if grpc:
            hdrs.append(stem + ".grpc.pb.h")
            cc_srcs.append(stem + ".grpc.pb.cc")

    proto_args = " ".join(["$(execpath %s)" % s for s in srcs])
    cmd = _PROTOC + " -I. --cpp_out=$(GENDIR)"
    if grpc:
        cmd += (" --plugin=protoc-gen-grpc=" + _GRPC_CPP_PLUGIN +
                " --grpc_out=$(GENDIR)")
    cmd += " " + proto_args

    native.genrule(
        name = name + "_gen",
        srcs = srcs + [":" + name + "_protos"],
        outs = hdrs + cc_srcs,
        cmd = cmd,
        message = "Generating C++ protobuf code for //%s:%s" % (native.package_name(), name),
        testonly = testonly,
        tags = tags,
        visibility = ["//visibility:private"],
    )

    lib_deps = ["//third_party:protobuf"]
    if grpc:
        lib_deps.append("//third_party:grpc++")
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        deps = deps + lib_deps,
        testonly = testonly,
        tags = tags,
        visibility = visibility,
    )

    if plugin == None:
        if plugin_out_suffixes or plugin_deps or plugin_options:
            fail("vrpc_cc_proto_library: plugin_* arguments need `plugin`")
        return

    if not plugin_out_suffixes:
        fail("vrpc_cc_proto_library: `plugin` needs plugin_out_suffixes")
    if plugin_name == None:
        plugin_name = _label_name(plugin)
        if plugin_name.startswith("protoc-gen-"):
            plugin_name = plugin_name[len("protoc-gen-"):]

    p_hdrs = []
    p_srcs = []
    for stem in stems:
        for suffix in plugin_out_suffixes:
            out = stem + suffix
            if _is_header(out):
                p_hdrs.append(out)
            else:
                p_srcs.append(out)

    p_cmd = (_PROTOC + " -I." +
             " --plugin=protoc-gen-%s=$(execpath %s)" % (plugin_name, plugin) +
             " --%s_out=$(GENDIR)" % plugin_name)
    if plugin_options:
        p_cmd += " --%s_opt='%s'" % (plugin_name, plugin_options)
    p_cmd += " " + proto_args

    native.genrule(
        name = "%s_%s_gen" % (name, plugin_name),
        srcs = srcs + [":" + name + "_protos"],
        outs = p_hdrs + p_srcs,
        tools = [plugin],
        cmd = p_cmd,
        message = "Generating %s code for //%s:%s" % (plugin_name, native.package_name(), name),
        testonly = testonly,
        tags = tags,
        visibility = ["//visibility:private"],
    )

    native.cc_library(
        name = "%s_%s" % (name, plugin_name),
        srcs = p_srcs,
        hdrs = p_hdrs,
        deps = [":" + name] + plugin_deps,
        testonly = testonly,
        tags = tags,
        visibility = visibility,
    )

def vrpc_cc_grpc_stubs(name, srcs, proto, testonly = False, tags = [], visibility = None):
    """gRPC C++ stubs as a library of their own.

    For .proto files whose messages `proto` (a vrpc_cc_proto_library of this
    package, without grpc) already builds: only the programs that speak gRPC
    (a gateway, a CLI) link gRPC; vrpc-only programs (a guest agent) do not.

    Args:
      name: the cc_library with x.grpc.pb.h / x.grpc.pb.cc.
      srcs: the same .proto files as `proto`'s.
      proto: label of the vrpc_cc_proto_library with the messages.
      testonly: as for any rule.
      tags: added to every generated target.
      visibility: of the cc_library.
    """
    stems = [_stem(s) for s in srcs]
    hdrs = [s + ".grpc.pb.h" for s in stems]
    cc_srcs = [s + ".grpc.pb.cc" for s in stems]
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [_proto_files_label(proto)],
        outs = hdrs + cc_srcs,
        cmd = (_PROTOC + " -I. --plugin=protoc-gen-grpc=" + _GRPC_CPP_PLUGIN +
               " --grpc_out=$(GENDIR) " + " ".join(["$(execpath %s)" % s for s in srcs])),
        message = "Generating gRPC C++ stubs for //%s:%s" % (native.package_name(), name),
        testonly = testonly,
        tags = tags,
        visibility = ["//visibility:private"],
    )
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        deps = [proto, "//third_party:grpc++", "//third_party:protobuf"],
        testonly = testonly,
        tags = tags,
        visibility = visibility,
    )
