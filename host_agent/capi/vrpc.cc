// File: host_agent/capi/vrpc.cc
//
// The C ABI over agent_client::AgentClient.
#include "host_agent/capi/vrpc.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "host_agent/client/agent_client.h"

struct vrpc_agent {
  std::unique_ptr<vrpc::agent_client::AgentClient> client;
};

namespace {

char* Dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) return nullptr;
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

int Report(const absl::Status& s, char** error) {
  if (!s.ok() && error != nullptr) *error = Dup(std::string(s.message()));
  return static_cast<int>(s.code());
}

int NoAgent(char** error) {
  return Report(absl::InvalidArgumentError("a NULL argument"), error);
}

}  // namespace

extern "C" {

int vrpc_agent_open(const char* address, double timeout_seconds, vrpc_agent** agent,
                    char** error) {
  if (address == nullptr || agent == nullptr) return NoAgent(error);
  *agent = nullptr;
  auto client = vrpc::agent_client::AgentClient::Connect(
      address, timeout_seconds > 0 ? absl::Seconds(timeout_seconds) : absl::InfiniteDuration());
  if (!client.ok()) return Report(client.status(), error);
  *agent = new vrpc_agent{*std::move(client)};
  return 0;
}

void vrpc_agent_close(vrpc_agent* agent) { delete agent; }

int vrpc_agent_exec(vrpc_agent* agent, const char* const* argv, const void* stdin_data,
                    size_t stdin_len, vrpc_exec_result* result, char** error) {
  if (agent == nullptr || argv == nullptr || result == nullptr) return NoAgent(error);
  std::memset(result, 0, sizeof(*result));
  std::vector<std::string> args;
  for (const char* const* a = argv; *a != nullptr; ++a) args.emplace_back(*a);
  const std::string in = stdin_len > 0 && stdin_data != nullptr
                             ? std::string(static_cast<const char*>(stdin_data), stdin_len)
                             : std::string();
  auto run = agent->client->Run(args, in);
  if (!run.ok()) return Report(run.status(), error);
  result->exit_code = run->status.exit_code;
  result->signal = run->status.signal;
  result->out = Dup(run->stdout_bytes);
  result->out_len = run->stdout_bytes.size();
  result->err = Dup(run->stderr_bytes);
  result->err_len = run->stderr_bytes.size();
  return 0;
}

void vrpc_exec_result_free(vrpc_exec_result* result) {
  if (result == nullptr) return;
  std::free(result->out);
  std::free(result->err);
  std::memset(result, 0, sizeof(*result));
}

int vrpc_agent_put_file(vrpc_agent* agent, const char* local_path, const char* remote_path,
                        int overwrite, char** error) {
  if (agent == nullptr || local_path == nullptr || remote_path == nullptr) return NoAgent(error);
  return Report(agent->client->PutFile(local_path, remote_path, overwrite != 0, nullptr), error);
}

int vrpc_agent_get_file(vrpc_agent* agent, const char* remote_path, const char* local_path,
                        char** error) {
  if (agent == nullptr || local_path == nullptr || remote_path == nullptr) return NoAgent(error);
  return Report(agent->client->GetFile(remote_path, local_path, nullptr), error);
}

int vrpc_agent_system_info_json(vrpc_agent* agent, char** json, char** error) {
  if (agent == nullptr || json == nullptr) return NoAgent(error);
  auto info = agent->client->SystemInfo();
  if (!info.ok()) return Report(info.status(), error);
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(*info, &out, options);
  *json = Dup(out);
  return 0;
}

int vrpc_agent_health(vrpc_agent* agent, int* serving, char** error) {
  if (agent == nullptr || serving == nullptr) return NoAgent(error);
  auto healthy = agent->client->Healthy();
  if (!healthy.ok()) return Report(healthy.status(), error);
  *serving = *healthy ? 1 : 0;
  return 0;
}

void vrpc_free(void* p) { std::free(p); }

const char* vrpc_status_name(int code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",      "DATA_LOSS",
      "UNAUTHENTICATED"};
  return code >= 0 && code < 17 ? kNames[code] : "UNKNOWN";
}

}  // extern "C"
