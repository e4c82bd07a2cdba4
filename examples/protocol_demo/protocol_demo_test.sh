#!/bin/bash
# Runs the demo and checks that it narrates the handshake and verifies data.
set -euo pipefail
out=$("examples/protocol_demo/protocol_demo" --bytes=100000 --buf_alloc=32768)
echo "$out"
for want in "REQUEST" "RESPONSE" "connected -> ESTABLISHED" "CREDIT_REQUEST" \
            "CREDIT_UPDATE" "SHUTDOWN" "content verified" "refused" "demo OK"; do
  grep -q -- "$want" <<<"$out" || { echo "missing from demo output: $want"; exit 1; }
done
