#!/bin/bash
# File: examples/echo/echo_test.sh
# The echo example end to end: the demo (virtio-user driver <-> vhost-user
# device, separate processes), the roles swapped (the guest driver serves,
# the device dials), the in-process loopback client, kernel Unix sockets,
# and the exit codes of failures a user can cause.
set -uo pipefail
here="$TEST_SRCDIR/vrpc/examples/echo"
fail=0
check() {  # check NAME EXPECTED_EXIT CMD...
  local name="$1" want="$2"; shift 2
  "$@" >"$TEST_TMPDIR/out" 2>&1
  local got=$?
  if [[ $got -ne $want ]]; then
    echo "FAIL $name: exit $got, wanted $want"; cat "$TEST_TMPDIR/out"; fail=1
  else
    echo "ok   $name"
  fi
}

check demo 0 "$here/demo" --count=50 --size=1000
grep -q "every call kind verified" "$TEST_TMPDIR/out" || { echo "FAIL demo output"; fail=1; }

for mode in unary server-stream client-stream bidi; do
  check "loopback $mode" 0 "$here/client" --target=loopback:7 --mode=$mode --count=100 --size=300
done
grep -q "100 ok, 0 failed" "$TEST_TMPDIR/out" || { echo "FAIL loopback counts"; fail=1; }
# The callback API: AsyncUnary and the client reactors, every step on the loop.
for mode in unary server-stream client-stream bidi; do
  check "loopback callback $mode" 0 "$here/client" --target=loopback:7 --mode=$mode --api=callback \
    --count=100 --size=300
  grep -q "100 ok, 0 failed" "$TEST_TMPDIR/out" || { echo "FAIL callback $mode counts"; fail=1; }
done

# Roles swapped: the guest (driver) serves; the host (device) dials it.
dir="$(mktemp -d /tmp/vrpc-echo-test-XXXXXX)"
"$here/client" --target="vhost-user:$dir/vm.vsock:3:6000" --mode=bidi --count=20 --size=100 \
  >"$dir/client.out" 2>&1 &
client=$!
for _ in $(seq 1 100); do [[ -S "$dir/vm.vsock" ]] && break; sleep 0.05; done
"$here/server" --listen="virtio-user:$dir/vm.vsock:any:6000" >"$dir/server.out" 2>&1 &
server=$!
if wait $client; then echo "ok   guest serves, host dials"; else
  echo "FAIL guest serves, host dials"; cat "$dir/client.out" "$dir/server.out"; fail=1; fi
kill $server 2>/dev/null; wait $server 2>/dev/null
rm -rf "$dir"

# Kernel AF_UNIX.
dir="$(mktemp -d /tmp/vrpc-echo-test-XXXXXX)"
"$here/server" --listen="unix:$dir/echo.sock" >"$dir/server.out" 2>&1 &
server=$!
for _ in $(seq 1 100); do grep -q listening "$dir/server.out" 2>/dev/null && break; sleep 0.05; done
for mode in unary server-stream client-stream bidi; do
  check "unix $mode" 0 "$here/client" --target="unix:$dir/echo.sock" --mode=$mode --count=100 --size=5000
  check "unix callback $mode" 0 "$here/client" --target="unix:$dir/echo.sock" --mode=$mode \
    --api=callback --count=100 --size=30000
done
kill $server 2>/dev/null; wait $server 2>/dev/null
rm -rf "$dir"

check "bad flags" 2 "$here/client" --target=loopback:7 --mode=sideways
check "bad api" 2 "$here/client" --target=loopback:7 --api=telepathy
check "bad address" 2 "$here/client" --target=tcp:1.2.3.4:5
check "no server" 1 "$here/client" --target=virtio-user:/tmp/vrpc-no-such.sock:2:5 --timeout=2s
check "server bad address" 2 "$here/server" --listen=hvsock:/tmp/x.sock:5
exit $fail
