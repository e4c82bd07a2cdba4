"""Compiler options shared by vrpc's own C++ targets.

Usage:
    load("//tools/build_defs:copts.bzl", "VRPC_COPTS", "VRPC_TEST_COPTS")
    cc_library(name = "foo", srcs = [...], copts = VRPC_COPTS)
    cc_test(name = "foo_test", srcs = [...], copts = VRPC_TEST_COPTS)

The language standard (-std=c++17) is set for every C++ compile, host tools
included, by .bazelrc (--cxxopt/--host_cxxopt), not here, so that these lists
also suit C sources.

The flags work with both gcc 12 (default toolchain) and clang 14
(--config=clang and the sanitizer configs). Debian's headers are included as
system headers, so warnings in them are not reported. -Werror is not on by
default; use `--config=werror` to turn all warnings into errors, or put
VRPC_WERROR_COPTS on targets whose code is known to be clean. A few
diagnostics that are always real bugs are errors everywhere.
"""

VRPC_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
    "-Wnon-virtual-dtor",
    "-Woverloaded-virtual",
    "-Wvla",
    "-Wformat=2",
    "-Werror=return-type",
    "-Werror=format-security",
]

# Tests: the same, minus warnings that gtest/gmock macros commonly trigger.
VRPC_TEST_COPTS = VRPC_COPTS + [
    "-Wno-sign-compare",
]

# For targets that want to be warning-clean on both compilers.
VRPC_WERROR_COPTS = VRPC_COPTS + ["-Werror"]
