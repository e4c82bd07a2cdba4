/* File: host_agent/capi/vrpc.h
 *
 * The vrpc C ABI: call a guest agent from C (or any language with a C FFI)
 * without gRPC. A handle is one vrpc channel to one guest agent, at any
 * address of docs/addresses.md: "hvsock:/run/vm1.sock:1024" (the host
 * agent's hybrid socket, or Firecracker's), "vsock:3:1024", "unix:...".
 *
 * Every call returns 0 on success or a gRPC status code (5 NOT_FOUND, 7
 * PERMISSION_DENIED, 14 UNAVAILABLE, ...). When |error| is not NULL, a
 * failure stores a malloc'd, NUL-terminated message there; free it (and
 * every other string returned) with vrpc_free. Handles are thread-safe.
 *
 *   vrpc_agent* a;
 *   if (vrpc_agent_open("hvsock:/run/vm1.sock:1024", 30, &a, &err) == 0) {
 *     const char* argv[] = {"uname", "-a", NULL};
 *     vrpc_exec_result r;
 *     vrpc_agent_exec(a, argv, NULL, 0, &r, &err);
 *     ...
 *     vrpc_exec_result_free(&r);
 *     vrpc_agent_close(a);
 *   }
 */
#ifndef VRPC_HOST_AGENT_CAPI_VRPC_H_
#define VRPC_HOST_AGENT_CAPI_VRPC_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vrpc_agent vrpc_agent;

typedef struct vrpc_exec_result {
  int exit_code; /* -1 when killed by a signal */
  int signal;
  char* out; /* stdout, NUL-terminated (it may also contain NULs) */
  size_t out_len;
  char* err; /* stderr, likewise */
  size_t err_len;
} vrpc_exec_result;

/* Opens a channel to the guest agent at |address|; calls on it time out
 * after |timeout_seconds| (0: never). Connecting happens on first use. */
int vrpc_agent_open(const char* address, double timeout_seconds, vrpc_agent** agent,
                    char** error);
void vrpc_agent_close(vrpc_agent* agent);

/* Runs |argv| (NULL-terminated) in the guest with |stdin_len| bytes of
 * stdin, collecting its output (up to 64 MiB per stream). */
int vrpc_agent_exec(vrpc_agent* agent, const char* const* argv, const void* stdin_data,
                    size_t stdin_len, vrpc_exec_result* result, char** error);
void vrpc_exec_result_free(vrpc_exec_result* result);

/* Copies files in and out; the SHA-256 of the content is checked. */
int vrpc_agent_put_file(vrpc_agent* agent, const char* local_path, const char* remote_path,
                        int overwrite, char** error);
int vrpc_agent_get_file(vrpc_agent* agent, const char* remote_path, const char* local_path,
                        char** error);

/* SystemInfo as a JSON object (proto3 JSON of vrpc.agent.SystemInfoResponse). */
int vrpc_agent_system_info_json(vrpc_agent* agent, char** json, char** error);
/* grpc.health.v1 Check: *serving = 1 when SERVING. */
int vrpc_agent_health(vrpc_agent* agent, int* serving, char** error);

void vrpc_free(void* p);
/* "OK", "NOT_FOUND", ... for a status code. */
const char* vrpc_status_name(int code);

#ifdef __cplusplus
}
#endif

#endif /* VRPC_HOST_AGENT_CAPI_VRPC_H_ */
