#!/bin/sh
# rpc_agent_guest.sh: runs INSIDE the QEMU guest of
# tests/e2e:kernel_vsock_rpc_e2e_test (never on the host), with the static
# guest builds of the echo server and client and of the guest agent in
# /payload, and the agent's policy in /payload/agent.policy.
#
#   1. serves Echo on vsock:any:5000 and the agent on vsock:any:1024 (the
#      guest kernel's AF_VSOCK: reachable over vsock_loopback as CID 1 and,
#      through the virtio transport and the host's vhost-user device, from
#      the host's hybrid socket);
#   2. runs the echo client over vsock_loopback (vsock:1:5000) in every mode,
#      each reply checked by the client: "PASS guest-echo <name>";
#   3. dials the agent from CID 1, which its policy refuses: the call fails
#      and the agent logs "refusing vsock:1:...": "PASS agent-refuses-cid1";
#   4. prints VRPC-GUEST-READY and lets the host run its part until the host
#      creates /tmp/host-done (through the agent);
#   5. stops both servers with SIGTERM: each must exit 0.
# Exits with the number of failed steps.
P=/payload
fails=0
pass() { echo "PASS $*"; }
fail() {
  echo "FAIL $*"
  fails=$((fails + 1))
}

# wait_for FILE TEXT SECONDS: until FILE contains TEXT.
wait_for() {
  n=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    n=$((n + 1))
    [ "$n" -gt $(($3 * 10)) ] && return 1
    sleep 0.1
  done
  return 0
}

: >/tmp/echo_server.log
: >/tmp/guest_agent.log
"$P/echo_server" --listen=vsock:any:5000 >>/tmp/echo_server.log 2>&1 &
echo_pid=$!
"$P/guest_agent" --listen=vsock:any:1024 --policy="$P/agent.policy" --power=log \
  >>/tmp/guest_agent.log 2>&1 &
agent_pid=$!
# Both logs on the console as they grow.
tail -f /tmp/echo_server.log /tmp/guest_agent.log &
tail_pid=$!

wait_for /tmp/echo_server.log "echo server listening on vsock:any:5000" 60 ||
  fail "echo-server-listening"
wait_for /tmp/guest_agent.log "guest agent serving on vsock:any:1024" 60 ||
  fail "guest-agent-listening"

# echo_run NAME FLAGS...: the echo client to CID 1 (vsock_loopback).
echo_run() {
  name=$1
  shift
  if "$P/echo_client" --target=vsock:1:5000 --timeout=60s "$@"; then
    pass "guest-echo $name"
  else
    fail "guest-echo $name: exit $?"
  fi
}
echo_run unary --mode=unary --count=50 --size=3000
echo_run server-stream --mode=server-stream --count=50 --size=3000
echo_run client-stream --mode=client-stream --count=50 --size=3000
echo_run bidi --mode=bidi --count=50 --size=3000
echo_run unary-1MB --mode=unary --count=3 --size=1000000

# The agent serves CID 2 only: a local (CID 1) peer is refused.
if "$P/echo_client" --target=vsock:1:1024 --count=1 --timeout=5s; then
  fail "agent-refuses-cid1: a call from CID 1 succeeded"
elif wait_for /tmp/guest_agent.log "refusing vsock:1:" 10; then
  pass "agent-refuses-cid1"
else
  fail "agent-refuses-cid1: the agent did not log the refusal"
fi

echo "VRPC-GUEST-READY"
n=0
while [ ! -e /tmp/host-done ]; do
  n=$((n + 1))
  if [ "$n" -gt 3000 ]; then
    fail "host-done: the host did not finish within 300 s"
    break
  fi
  sleep 0.1
done

kill -TERM "$echo_pid" "$agent_pid"
wait "$echo_pid"
rc=$?
[ "$rc" -eq 0 ] && pass "echo-server-exit" || fail "echo-server-exit: $rc"
wait "$agent_pid"
rc=$?
[ "$rc" -eq 0 ] && pass "guest-agent-exit" || fail "guest-agent-exit: $rc"
sleep 0.2
kill "$tail_pid" 2>/dev/null
echo "guest steps failed: $fails"
exit "$fails"
