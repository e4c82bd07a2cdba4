#!/bin/bash
# File: tests/agent/cli_test.sh
#
# vrpcctl and a Python gRPC client against a guest, through the host
# agent's gateway: the host agent serves guest 3 (vm1) on a vhost-user
# socket; the guest agent runs on vrpc's virtio-user driver attached to it.
set -uo pipefail
r="$TEST_SRCDIR/vrpc"
host_agent="$r/host_agent/host_agent"
guest_agent="$r/guest_agent/guest_agent"
vrpcctl="$r/host_agent/vrpcctl/vrpcctl"
py=/usr/bin/python3  # Debian's, with python3-grpcio
d="$(mktemp -d /tmp/vrpc-cli-XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$d"; }
trap cleanup EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

cat >"$d/policy" <<'POLICY'
allow Exec
allow PutFile
allow GetFile
allow Stat
allow List
allow SystemInfo
allow Forward
POLICY
"$host_agent" --vm "guest-cid=3,socket=$d/vm.vsock,uds-path=$d/vm.sock,name=vm1" \
  --gateway "$d/gw.sock" 2>"$d/host.log" &
pids+=($!)
for _ in $(seq 1 200); do [[ -S "$d/gw.sock" && -S "$d/vm.vsock" ]] && break; sleep 0.05; done
"$guest_agent" --listen="virtio-user:$d/vm.vsock:any:1024" --policy="$d/policy" --power=log \
  >"$d/guest.out" 2>"$d/guest.log" &
pids+=($!)
for _ in $(seq 1 200); do grep -q serving "$d/guest.out" 2>/dev/null && break; sleep 0.05; done
export VRPC_GATEWAY="$d/gw.sock"
ctl() { "$vrpcctl" --vm vm1 "$@"; }

out="$(ctl exec -- uname -a)" && [[ "$out" == Linux* ]] && ok "exec uname -a" || bad "exec: $out"
ctl exec -- sh -c 'exit 7'; [[ $? -eq 7 ]] && ok "exec exit status" || bad "exec exit status"
out="$(echo hello | ctl exec -i -- tr a-z A-Z)"; [[ "$out" == HELLO ]] && ok "exec -i" || bad "exec -i: $out"
ctl --json exec -- echo hi | $py -c 'import json,sys; j=json.load(sys.stdin); assert j["exit_code"]==0 and j["stdout"]=="hi\n"' \
  && ok "exec --json" || bad "exec --json"
ctl --json info | $py -c 'import json,sys; j=json.load(sys.stdin); assert j["kernel"].startswith("Linux") and int(j["cpus"])>0' \
  && ok "info --json" || bad "info --json"
ctl info | grep -q '^kernel:   Linux' && ok "info" || bad "info"
[[ "$(ctl health)" == "vm1: SERVING" ]] && ok "health" || bad "health"

head -c $((16 << 20)) /dev/urandom >"$d/big"
ctl cp "$d/big" ":$d/big.guest" 2>"$d/progress" | grep -q "SHA-256 verified" && ok "cp up" || bad "cp up"
grep -q "100%" "$d/progress" && ok "cp progress bar" || bad "cp progress: $(cat "$d/progress")"
ctl --json cp ":$d/big.guest" "$d/big.back" | grep -q '"bytes": 16777216' && ok "cp down --json" || bad "cp down"
cmp -s "$d/big" "$d/big.back" && ok "cp round trip content" || bad "cp content differs"
ctl stat "$d/big.guest" | grep -q 16777216 && ok "stat" || bad "stat"
ctl ls "$d" | grep -q big.guest && ok "ls" || bad "ls"

# forward: a TCP service "in the guest" (this machine), reached through a local port.
$py - "$d" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1] + "/svc.port", "w").write(str(s.getsockname()[1]))
c, _ = s.accept(); data = c.recv(100); c.sendall(b"svc:" + data); c.close()
PY
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$d/svc.port" ]] && break; sleep 0.05; done
svc_port="$(cat "$d/svc.port")"
local_port=$(( 20000 + RANDOM % 20000 ))
ctl forward "$local_port:$svc_port" >"$d/fwd.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q forwarding "$d/fwd.out" 2>/dev/null && break; sleep 0.05; done
reply="$($py -c "
import socket; c = socket.create_connection(('127.0.0.1', $local_port)); c.sendall(b'ping')
print(c.recv(100).decode())")"
[[ "$reply" == "svc:ping" ]] && ok "forward" || bad "forward: '$reply' $(cat "$d/fwd.out")"

"$vrpcctl" --vm vm9 info 2>"$d/err"; [[ $? -eq 255 ]] && grep -q NOT_FOUND "$d/err" && ok "unknown vm" || bad "unknown vm"
"$vrpcctl" info 2>/dev/null; [[ $? -eq 2 ]] && ok "usage error" || bad "usage error"

# Python, through the same gateway.
mkdir -p "$d/pb2"
(cd "$r" && /usr/bin/protoc -I. --python_out="$d/pb2" proto/agent/agent.proto) || bad "protoc --python_out"
touch "$d/pb2/proto/__init__.py" "$d/pb2/proto/agent/__init__.py"
$py "$r/tests/agent/gateway_client.py" "$d/gw.sock" vm1 "$d/pb2" && ok "python grpcio client" || bad "python client"

[[ $fail -ne 0 ]] && { echo "--- host agent"; cat "$d/host.log"; echo "--- guest agent"; cat "$d/guest.log"; }
exit $fail
