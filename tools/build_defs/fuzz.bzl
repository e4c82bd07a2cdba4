"""vrpc_cc_fuzz_test: libFuzzer-style fuzz targets that are also unit tests.

    load("//tools/build_defs:fuzz.bzl", "vrpc_cc_fuzz_test")

    vrpc_cc_fuzz_test(
        name = "frame_parser_fuzz_test",
        srcs = ["frame_parser_fuzz_test.cc"],   # defines LLVMFuzzerTestOneInput
        deps = [":frame_parser"],
        corpus = glob(["testdata/frame_parser_corpus/**"]),
    )

`srcs` must define

    extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

and may define `LLVMFuzzerInitialize(int*, char***)`. The macro creates:

  <name>_fuzz_target  cc_library (alwayslink, testonly) with `srcs` and `deps`;
                      private, shared by the two targets below.
  <name>              cc_test. In every build (gcc included) it replays each
                      file of `corpus` through LLVMFuzzerTestOneInput with
                      //tools/build_defs:fuzz_replay_main.cc. It fails when an
                      input crashes, cannot be read, or when no input at all
                      was found (so an empty or mistyped corpus fails).
                      Tagged "fuzz_replay".
  <name>_fuzzer       cc_binary, tagged "fuzzer" (not a test). Under
                      --config=fuzz it links libFuzzer (-fsanitize=fuzzer)
                      with ASan+UBSan and is a coverage-guided fuzzer:
                        bazel run --config=fuzz //pkg:<name>_fuzzer -- \\
                            -max_total_time=30 path/to/corpus
                      Relative paths are taken from the directory `bazel run`
                      was started in (see fuzz_bazel_run_cwd.cc). In any other
                      build it links the replay main instead, so
                      `bazel build //...` builds it everywhere.

Args:
  name: name of the cc_test; the other targets are derived from it.
  srcs: C++ sources defining LLVMFuzzerTestOneInput.
  deps: libraries the fuzz target uses.
  corpus: seed inputs (files; a filegroup works too). Replayed by the test,
      shipped as runfiles of both targets.
  copts: compiler options for `srcs` (default: VRPC_COPTS).
  data: extra runfiles for both targets.
  tags: extra tags for both targets.
  visibility: visibility of <name> and <name>_fuzzer.
  **kwargs: passed to the cc_test (size, timeout, flaky, shard_count, ...).
"""

load("//tools/build_defs:copts.bzl", "VRPC_COPTS")

def vrpc_cc_fuzz_test(
        name,
        srcs,
        deps = [],
        corpus = [],
        copts = None,
        data = [],
        tags = [],
        visibility = None,
        **kwargs):
    target = name + "_fuzz_target"
    native.cc_library(
        name = target,
        testonly = True,
        srcs = srcs,
        copts = VRPC_COPTS if copts == None else copts,
        deps = deps,
        # Nothing references LLVMFuzzerTestOneInput before libFuzzer's archive
        # is searched, so the object must be linked unconditionally.
        alwayslink = True,
        tags = tags,
        visibility = ["//visibility:private"],
    )

    if "size" not in kwargs:
        kwargs["size"] = "small"
    native.cc_test(
        name = name,
        deps = [
            ":" + target,
            "//tools/build_defs:fuzz_replay_main",
        ],
        data = corpus + data,
        args = ["$(rootpaths %s)" % c for c in corpus],
        tags = tags + ["fuzz_replay"],
        visibility = visibility,
        **kwargs
    )

    native.cc_binary(
        name = name + "_fuzzer",
        testonly = True,
        deps = [":" + target] + select({
            "//tools/build_defs:fuzzing": ["//tools/build_defs:fuzz_bazel_run_cwd"],
            "//conditions:default": ["//tools/build_defs:fuzz_replay_main"],
        }),
        linkopts = select({
            "//tools/build_defs:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = corpus + data,
        tags = tags + ["fuzzer"],
        visibility = visibility,
    )
