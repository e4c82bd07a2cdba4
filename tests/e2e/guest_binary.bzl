"""vrpc_guest_binary: fully static programs that run inside QEMU test guests.

    load("//tests/e2e:guest_binary.bzl", "vrpc_guest_binary")

    vrpc_guest_binary(
        name = "vsock_selftest",
        srcs = ["vsock_selftest.cc"],
        deps = [":stream_util"],
    )

The guest initramfs (tests/e2e/harness/initramfs.h) has no shared libraries
and no dynamic loader, so guest programs must be fully static. The macro
creates:

  <name>_static  cc_binary (tagged "manual"): `srcs`/`deps` linked with
                 `-static` (the toolchain's `fully_static_link` feature).
  <name>         the binary to use: a copy of <name>_static built through a
                 configuration transition that removes every -fsanitize* /
                 -fno-sanitize* flag from --copt and --linkopt.

Why the transition: `--config=asan`/`ubsan`/`tsan`/`fuzz` add
`-fsanitize=...` to *every* compile and link through --copt/--linkopt.
Sanitizer runtimes cannot be linked fully statically, and a sanitized binary
would not run in the guest anyway (no /proc/self/maps tricks, no symbolizer,
ASan's shadow memory does not fit well in a 256 MiB guest). The transition
rebuilds `srcs` and the *whole dependency graph* below them without
sanitizers, whatever the command-line config is, so a guest program may depend
on ordinary vrpc libraries (e.g. the userspace driver for the UIO test).
Everything else of the config (compiler, -O level, -g) is kept.

<name>_static is "manual" so that `bazel build //...` does not try to link it
statically in a sanitizer configuration.

Runfiles path of the result: "vrpc/<package>/<name>"; harness helper:
vrpc::e2e::Runfile("tests/e2e/guest/<name>").

Args:
  name: target name (also the file name of the binary).
  srcs, deps, copts, defines: as for cc_binary (copts default VRPC_COPTS).
  linkopts: extra link options (-static is added).
  testonly, visibility, tags: as usual.
"""

load("//tools/build_defs:copts.bzl", "VRPC_COPTS")

def _is_sanitizer_flag(flag):
    return flag.startswith("-fsanitize") or flag.startswith("-fno-sanitize")

def _no_sanitizers_transition_impl(settings, attr):
    return {
        "//command_line_option:copt": [
            f
            for f in settings["//command_line_option:copt"]
            if not _is_sanitizer_flag(f)
        ],
        "//command_line_option:linkopt": [
            f
            for f in settings["//command_line_option:linkopt"]
            if not _is_sanitizer_flag(f)
        ],
    }

_no_sanitizers_transition = transition(
    implementation = _no_sanitizers_transition_impl,
    inputs = [
        "//command_line_option:copt",
        "//command_line_option:linkopt",
    ],
    outputs = [
        "//command_line_option:copt",
        "//command_line_option:linkopt",
    ],
)

def _guest_binary_impl(ctx):
    binary = ctx.attr.binary
    if type(binary) == "list":
        binary = binary[0]
    src = binary[DefaultInfo].files_to_run.executable
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.run_shell(
        inputs = [src],
        outputs = [out],
        command = 'cp -f "$1" "$2" && chmod 0755 "$2"',
        arguments = [src.path, out.path],
        mnemonic = "GuestBinary",
        progress_message = "Copying static guest binary %s" % ctx.label,
    )
    return [DefaultInfo(
        files = depset([out]),
        executable = out,
        runfiles = ctx.runfiles(files = [out]),
    )]

_guest_binary = rule(
    implementation = _guest_binary_impl,
    executable = True,
    attrs = {
        "binary": attr.label(
            mandatory = True,
            executable = True,
            cfg = _no_sanitizers_transition,
        ),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)

def vrpc_guest_binary(
        name,
        srcs,
        deps = [],
        copts = None,
        linkopts = [],
        defines = [],
        testonly = False,
        visibility = None,
        tags = []):
    static_name = name + "_static"
    native.cc_binary(
        name = static_name,
        srcs = srcs,
        deps = deps,
        copts = VRPC_COPTS if copts == None else copts,
        defines = defines,
        linkopts = ["-static"] + linkopts,
        features = ["fully_static_link"],
        linkstatic = True,
        testonly = testonly,
        tags = tags + ["manual"],
        visibility = ["//visibility:private"],
    )
    _guest_binary(
        name = name,
        binary = ":" + static_name,
        testonly = testonly,
        tags = tags,
        visibility = visibility,
    )
