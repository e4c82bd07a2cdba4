#!/bin/bash
# The host_agent binary's life cycle, as an operator sees it: it refuses bad
# flags, logs one "ready" line per VM, refuses to take over sockets another
# agent serves, and on SIGTERM or SIGINT exits 0 and removes its sockets.
set -euo pipefail

bin="${TEST_SRCDIR}/vrpc/host_agent/host_agent"
# /tmp, not TEST_TMPDIR: Unix socket paths must fit in 107 bytes.
dir="$(mktemp -d /tmp/vrpc-agent.XXXXXX)"
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*" >&2; [[ -f "$dir/log" ]] && cat "$dir/log" >&2; exit 1; }

# Bad flags: exit 2 with the usage text.
set +e
"$bin" --guest-cid 2 --socket "$dir/a" --uds-path "$dir/b" 2>"$dir/bad"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "bad CID exited $rc, want 2"
grep -q "usage: host_agent" "$dir/bad" || fail "no usage text for bad flags"

# waits until the log has $1 lines matching $2 (10 s at most)
wait_for() {
  for _ in $(seq 100); do
    [[ $(grep -c "$2" "$dir/log" || true) -ge $1 ]] && return 0
    sleep 0.1
  done
  fail "never saw $1 x '$2'"
}

run_agent_and_stop() {
  local signal=$1
  "$bin" --vm "guest-cid=3,socket=$dir/vm3.vsock,uds-path=$dir/vm3.sock" \
         --vm "guest-cid=4,socket=$dir/vm4.vsock,uds-path=$dir/vm4.sock" \
         --ring-mode adaptive 2>"$dir/log" &
  local pid=$!
  wait_for 2 " ready: "
  grep -q "vm 3 ready" "$dir/log" || fail "no ready line for vm 3"
  grep -q "vm 4 ready" "$dir/log" || fail "no ready line for vm 4"
  for s in vm3.vsock vm3.sock vm4.vsock vm4.sock; do
    [[ -S "$dir/$s" ]] || fail "socket $s missing while running"
  done

  # A second agent must not steal live sockets.
  set +e
  "$bin" --guest-cid 3 --socket "$dir/vm3.vsock" --uds-path "$dir/other.sock" 2>"$dir/second"
  rc=$?
  set -e
  [[ $rc -eq 1 ]] || fail "second agent on a live socket exited $rc, want 1"
  [[ -S "$dir/vm3.vsock" ]] || fail "second agent removed the first one's socket"

  kill -"$signal" "$pid"
  set +e
  wait "$pid"
  rc=$?
  set -e
  [[ $rc -eq 0 ]] || fail "agent exited $rc after SIG$signal, want 0"
  for s in vm3.vsock vm3.sock vm4.vsock vm4.sock; do
    [[ ! -e "$dir/$s" ]] || fail "socket $s left behind after SIG$signal"
  done
}

run_agent_and_stop TERM
run_agent_and_stop INT

# A stale socket file from a crashed agent is replaced.
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$dir/vm3.vsock"
[[ -S "$dir/vm3.vsock" ]] || fail "could not make a stale socket"
run_agent_and_stop TERM
echo PASS
