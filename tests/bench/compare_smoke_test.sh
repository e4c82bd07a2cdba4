#!/usr/bin/env bash
# Runs //tests/bench:compare --smoke (every figure path once, tiny counts)
# and checks the JSON's structure. Passes when goals are missed; fails when
# compare fails (a figure path crashed or errored) or the JSON is malformed.
set -euo pipefail

compare="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/bench/compare"
out="${TEST_TMPDIR:-/tmp}/compare_smoke.json"

"$compare" --smoke --json="$out"

python3 - "$out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
figures, goals = doc["figures"], doc["goals"]
assert figures and goals, "empty figures or goals"
for f in figures:
    assert set(f) >= {"name", "value", "unit"}, f
    assert f["value"] is None or isinstance(f["value"], (int, float)), f
    assert f["value"] is not None or f.get("note"), ("a missing figure needs a note", f)
for g in goals:
    assert set(g) >= {"goal", "ratio", "target", "met"}, g
    assert isinstance(g["met"], bool), g
names = {f["name"] for f in figures}
for want in ["cache-line ping-pong RTT p50", "gRPC unary 64 B RTT p50",
             "vrpc poll unary 64 B RTT p50", "vrpc interrupt unary 64 B RTT p50",
             "vrpc poll pipelined 64 B (1 client, 1 server thread)",
             "vrpc poll 1 MiB streaming throughput", "vrpc client VmHWM (memory workload)",
             "instructions per unary 64 B call (loopback, both ends)",
             "instructions per unary 64 B call over the device: client + driver",
             "instructions per unary 64 B call over the device: device + server"]:
    assert want in names, ("missing figure", want)
print("compare smoke: %d figures, %d goals, JSON ok" % (len(figures), len(goals)))
PY
