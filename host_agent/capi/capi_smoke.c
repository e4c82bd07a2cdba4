/* File: host_agent/capi/capi_smoke.c
 *
 * The C ABI used from C (compiled as C, not C++): what an embedder does.
 * vrpc_capi_smoke runs it against a guest agent and returns 0 when every
 * step behaved, else the step's number; |why| receives a message. */
#include <stdio.h>
#include <string.h>

#include "host_agent/capi/vrpc.h"

int vrpc_capi_smoke(const char* address, const char* local_file, const char* remote_file,
                    const char* back_file, char* why, size_t why_len) {
  vrpc_agent* agent = NULL;
  char* error = NULL;
  int step = 0;
  if (vrpc_agent_open(address, 60, &agent, &error) != 0) { step = 1; goto out; }
  {
    int serving = 0;
    if (vrpc_agent_health(agent, &serving, &error) != 0 || !serving) { step = 2; goto out; }
  }
  {
    const char* argv[] = {"uname", "-a", NULL};
    vrpc_exec_result r;
    if (vrpc_agent_exec(agent, argv, NULL, 0, &r, &error) != 0) { step = 3; goto out; }
    const int good = r.exit_code == 0 && strncmp(r.out, "Linux ", 6) == 0;
    vrpc_exec_result_free(&r);
    if (!good) { step = 4; goto out; }
  }
  {
    const char* argv[] = {"cat", NULL};
    vrpc_exec_result r;
    if (vrpc_agent_exec(agent, argv, "piped", 5, &r, &error) != 0) { step = 5; goto out; }
    const int good = r.out_len == 5 && memcmp(r.out, "piped", 5) == 0;
    vrpc_exec_result_free(&r);
    if (!good) { step = 6; goto out; }
  }
  {
    char* json = NULL;
    if (vrpc_agent_system_info_json(agent, &json, &error) != 0) { step = 7; goto out; }
    const int good = strstr(json, "\"kernel\"") != NULL;
    vrpc_free(json);
    if (!good) { step = 8; goto out; }
  }
  if (vrpc_agent_put_file(agent, local_file, remote_file, 1, &error) != 0) { step = 9; goto out; }
  if (vrpc_agent_get_file(agent, remote_file, back_file, &error) != 0) { step = 10; goto out; }
  {
    const char* argv[] = {"/no/such/program", NULL};
    vrpc_exec_result r;
    const int code = vrpc_agent_exec(agent, argv, NULL, 0, &r, &error);
    if (code != 5 || strcmp(vrpc_status_name(code), "NOT_FOUND") != 0) { step = 11; goto out; }
    vrpc_free(error);
    error = NULL;
  }
out:
  snprintf(why, why_len, "step %d: %s", step, error != NULL ? error : "-");
  vrpc_free(error);
  vrpc_agent_close(agent);
  return step;
}
