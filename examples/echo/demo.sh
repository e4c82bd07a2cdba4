#!/bin/bash
# File: examples/echo/demo.sh
#
# bazel run //examples/echo:demo [-- --count=N --size=BYTES]
#
# The echo example over vrpc's userspace virtio-vsock, no VM needed:
#   server: vrpc's vhost-user vsock device serving guest CID 3; the Echo
#           service listens on host port 5000   (vhost-user:SOCK:3:5000)
#   client: vrpc's guest driver, attached to that device as a vhost-user
#           frontend (memfd memory, eventfds), calling CID 2 port 5000
#           (virtio-user:SOCK:2:5000)
# Runs every call kind; exits non-zero if any reply was wrong.
set -euo pipefail

here="${RUNFILES_DIR:-$0.runfiles}/vrpc/examples/echo"
[[ -x "$here/server" ]] || here="$(dirname "$0")"
count=200
size=4096
for arg in "$@"; do
  case "$arg" in
    --count=*) count="${arg#*=}" ;;
    --size=*) size="${arg#*=}" ;;
    *) echo "usage: demo [--count=N] [--size=BYTES]" >&2; exit 2 ;;
  esac
done

dir="$(mktemp -d /tmp/vrpc-demo-XXXXXX)"
sock="$dir/vm.vsock"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

"$here/server" --listen="vhost-user:$sock:3:5000" >"$dir/server.out" 2>"$dir/server.log" &
server_pid=$!
for _ in $(seq 1 200); do
  grep -q "listening" "$dir/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  sleep 0.05
done
cat "$dir/server.out"

status=0
for mode in unary server-stream client-stream bidi; do
  n="$count"
  [[ "$mode" == client-stream ]] && n=$(( count * size > 4194304 ? 4194304 / (size > 0 ? size : 1) : count ))
  "$here/client" --target="virtio-user:$sock:2:5000" --mode="$mode" --count="$n" \
    --size="$size" 2>>"$dir/client.log" || status=1
done
if [[ $status -ne 0 ]]; then
  echo "--- client log" >&2; cat "$dir/client.log" >&2
  echo "--- server log" >&2; cat "$dir/server.log" >&2
  echo "demo: FAILED" >&2
  exit 1
fi
echo "demo: every call kind verified over the userspace virtio-vsock datapath"
