"""A guest called through the host agent's gRPC gateway from Python.

Debian's python3-grpcio and python3-protobuf only: message classes come
from protoc --python_out at test time; no vrpc code is involved. Usage:
  gateway_client.py GATEWAY_SOCKET VM_NAME PB2_DIR
Exits 0 when every check passed.
"""
import sys

sys.path.insert(0, sys.argv[3])

import grpc  # noqa: E402
from proto.agent import agent_pb2  # noqa: E402


def main():
    gateway, vm = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel("unix:" + gateway)
    meta = (("vrpc-vm", vm),)

    info = channel.unary_unary(
        "/vrpc.agent.Agent/SystemInfo",
        request_serializer=agent_pb2.SystemInfoRequest.SerializeToString,
        response_deserializer=agent_pb2.SystemInfoResponse.FromString,
    )(agent_pb2.SystemInfoRequest(), metadata=meta, timeout=30)
    assert info.kernel.startswith("Linux "), info.kernel
    assert info.memory_total_bytes > 0
    print("python: SystemInfo kernel =", info.kernel)

    exec_call = channel.stream_stream(
        "/vrpc.agent.Agent/Exec",
        request_serializer=agent_pb2.ExecRequest.SerializeToString,
        response_deserializer=agent_pb2.ExecResponse.FromString,
    )
    start = agent_pb2.ExecRequest(start=agent_pb2.ExecStart(argv=["uname", "-a"]))
    out, code = b"", None
    for r in exec_call(iter([start]), metadata=meta, timeout=30):
        kind = r.WhichOneof("kind")
        if kind == "stdout":
            out += r.stdout
        elif kind == "exit":
            code = r.exit.code
    assert code == 0, code
    assert out.startswith(b"Linux "), out
    print("python: Exec uname -a ->", out.decode().strip())

    try:
        channel.unary_unary(
            "/vrpc.agent.Agent/Shutdown",
            request_serializer=agent_pb2.ShutdownRequest.SerializeToString,
            response_deserializer=agent_pb2.ShutdownResponse.FromString,
        )(agent_pb2.ShutdownRequest(), metadata=meta, timeout=30)
        raise AssertionError("Shutdown was allowed")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.code()
        print("python: Shutdown ->", e.code().name)

    try:
        channel.unary_unary(
            "/vrpc.agent.Agent/SystemInfo",
            request_serializer=agent_pb2.SystemInfoRequest.SerializeToString,
            response_deserializer=agent_pb2.SystemInfoResponse.FromString,
        )(agent_pb2.SystemInfoRequest(), metadata=(("vrpc-vm", "nope"),), timeout=30)
        raise AssertionError("an unknown VM answered")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e.code()
    print("python: all checks passed")


if __name__ == "__main__":
    main()
