#include "tests/e2e/harness/guest_kernel.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "core/base/status_macros.h"
#include "tests/e2e/harness/host_tools.h"

namespace vrpc {
namespace e2e {
namespace {

constexpr char kInstallHint[] =
    "The QEMU end-to-end tests boot Debian's guest kernel: run "
    "tools/install_deps.sh as root (it installs linux-image-amd64).";

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

bool Readable(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

absl::StatusOr<GuestKernel> CheckVersion(const std::string& version) {
  GuestKernel k{version, "/boot/vmlinuz-" + version, "/lib/modules/" + version};
  if (!Exists(k.image)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "guest kernel image ", k.image, " does not exist. ", kInstallHint));
  }
  if (!Readable(k.image)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "guest kernel image ", k.image, " is not readable by this user"));
  }
  if (!Exists(k.modules_dir + "/modules.dep")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "kernel modules for ", version, " not found (", k.modules_dir,
        "/modules.dep). ", kInstallHint));
  }
  return k;
}

// Names the compressor for a module file, or "" if it is uncompressed.
std::string Decompressor(absl::string_view path) {
  if (absl::EndsWith(path, ".ko.xz")) return "xz";
  if (absl::EndsWith(path, ".ko.zst")) return "zstd";
  if (absl::EndsWith(path, ".ko.gz")) return "gzip";
  return "";
}

uint32_t Le32(const std::string& d, size_t off) {
  return static_cast<uint32_t>(static_cast<uint8_t>(d[off])) |
         static_cast<uint32_t>(static_cast<uint8_t>(d[off + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(d[off + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(d[off + 3])) << 24;
}

// True if the ELF64 file |elf| has a "Xen" note of type
// XEN_ELFNOTE_PHYS32_ENTRY (18), the PVH entry point.
bool HasPvhNote(const std::string& elf) {
  if (elf.size() < sizeof(Elf64_Ehdr) || memcmp(elf.data(), ELFMAG, SELFMAG) != 0 ||
      elf[EI_CLASS] != ELFCLASS64) {
    return false;
  }
  Elf64_Ehdr eh;
  memcpy(&eh, elf.data(), sizeof(eh));
  for (int i = 0; i < eh.e_phnum; ++i) {
    const uint64_t off = eh.e_phoff + static_cast<uint64_t>(i) * eh.e_phentsize;
    if (off + sizeof(Elf64_Phdr) > elf.size()) return false;
    Elf64_Phdr ph;
    memcpy(&ph, elf.data() + off, sizeof(ph));
    if (ph.p_type != PT_NOTE || ph.p_offset + ph.p_filesz > elf.size()) continue;
    uint64_t pos = ph.p_offset;
    const uint64_t end = ph.p_offset + ph.p_filesz;
    while (pos + 12 <= end) {
      const uint32_t namesz = Le32(elf, pos), descsz = Le32(elf, pos + 4),
                     type = Le32(elf, pos + 8);
      const uint64_t name = pos + 12;
      if (namesz == 4 && name + 4 <= end && memcmp(elf.data() + name, "Xen", 4) == 0 &&
          type == 18) {
        return true;
      }
      pos = name + ((namesz + 3u) & ~3u) + ((descsz + 3u) & ~3u);
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::string> ExtractPvhKernel(const GuestKernel& kernel,
                                             const std::string& dir) {
  const std::string out = absl::StrCat(dir, "/vmlinux-", kernel.version);
  if (access(out.c_str(), R_OK) == 0) return out;
  VRPC_ASSIGN_OR_RETURN(std::string image, ReadFileToString(kernel.image));
  // x86 boot protocol (Documentation/x86/boot.rst): "HdrS" at 0x202,
  // version at 0x206, setup_sects at 0x1f1, payload_offset/length at
  // 0x248/0x24c (protocol >= 2.08), relative to the protected-mode code.
  if (image.size() < 0x250 || image.compare(0x202, 4, "HdrS") != 0 ||
      (static_cast<uint8_t>(image[0x206]) | static_cast<uint8_t>(image[0x207]) << 8) < 0x208) {
    return absl::UnimplementedError(absl::StrCat(kernel.image, " is not a bzImage >= 2.08"));
  }
  uint32_t setup_sects = static_cast<uint8_t>(image[0x1f1]);
  if (setup_sects == 0) setup_sects = 4;
  const uint64_t payload = (setup_sects + 1) * 512ull + Le32(image, 0x248);
  const uint64_t length = Le32(image, 0x24c);
  if (payload + length > image.size() || length < 8) {
    return absl::UnimplementedError(absl::StrCat(kernel.image, ": bad payload bounds"));
  }
  const std::string compressed = image.substr(payload, length);
  std::vector<std::string> args;
  if (compressed.compare(0, 6, "\xfd" "7zXZ\0", 6) == 0) {
    args = {"xz", "-dc", "--single-stream"};
  } else if (compressed.compare(0, 2, "\x1f\x8b") == 0) {
    args = {"gzip", "-dc"};
  } else if (compressed.compare(0, 4, "\x28\xb5\x2f\xfd") == 0) {
    args = {"zstd", "-dc"};
  } else {
    return absl::UnimplementedError(
        absl::StrCat(kernel.image, ": unsupported kernel compression"));
  }
  absl::StatusOr<std::string> tool = FindTool(args[0]);
  if (!tool.ok()) return absl::UnimplementedError(tool.status().message());
  args[0] = *tool;
  // Unique temporary names: several test processes may share |dir|.
  const std::string tmp = absl::StrCat(out, ".tmp.", getpid());
  VRPC_RETURN_IF_ERROR(WriteStringToFile(tmp + ".in", compressed));
  args.push_back(tmp + ".in");
  VRPC_ASSIGN_OR_RETURN(CommandResult r, RunCommand(args));
  unlink((tmp + ".in").c_str());
  // gzip and zstd complain about the 4-byte size the kernel build appends,
  // after having written everything; judge by the output instead.
  if (!HasPvhNote(r.out)) {
    return absl::UnimplementedError(absl::StrCat(
        kernel.image, ": decompressed kernel is not an ELF with a PVH entry note (",
        r.out.size(), " bytes; ", absl::StripAsciiWhitespace(r.err), ")"));
  }
  VRPC_RETURN_IF_ERROR(WriteStringToFile(tmp, r.out));
  if (rename(tmp.c_str(), out.c_str()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("rename ", tmp));
  }
  return out;
}

absl::StatusOr<GuestKernel> FindGuestKernel(absl::string_view version) {
  std::string wanted(version);
  if (wanted.empty()) {
    const char* env = getenv("VRPC_E2E_KERNEL_VERSION");
    if (env != nullptr) wanted = env;
  }
  if (!wanted.empty()) return CheckVersion(wanted);

  std::vector<std::string> candidates;
  DIR* dir = opendir("/boot");
  if (dir != nullptr) {
    while (struct dirent* e = readdir(dir)) {
      absl::string_view name(e->d_name);
      if (absl::ConsumePrefix(&name, "vmlinuz-") && !name.empty()) {
        candidates.emplace_back(name);
      }
    }
    closedir(dir);
  }
  std::string best;
  std::vector<std::string> rejected;
  for (const std::string& v : candidates) {
    absl::StatusOr<GuestKernel> k = CheckVersion(v);
    if (!k.ok()) {
      rejected.push_back(absl::StrCat(v, " (", k.status().message(), ")"));
      continue;
    }
    if (best.empty() || CompareVersions(v, best) > 0) best = v;
  }
  if (best.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no usable guest kernel: need /boot/vmlinuz-V together with "
        "/lib/modules/V/modules.dep",
        rejected.empty() ? std::string(" (no /boot/vmlinuz-* at all)")
                         : absl::StrCat("; rejected: ", absl::StrJoin(rejected, "; ")),
        ". ", kInstallHint));
  }
  return CheckVersion(best);
}

absl::StatusOr<std::vector<KernelModule>> ResolveModules(
    const GuestKernel& kernel, const std::vector<std::string>& names) {
  VRPC_ASSIGN_OR_RETURN(std::string modinfo, FindTool("modinfo"));

  // Requested name -> module; built-in modules only go into |builtin|.
  std::map<std::string, KernelModule> info;
  std::set<std::string> builtin;
  auto lookup = [&](const std::string& name) -> absl::Status {
    if (info.count(name) != 0 || builtin.count(name) != 0) return absl::OkStatus();
    VRPC_ASSIGN_OR_RETURN(CommandResult r,
                          RunCommand({modinfo, "-k", kernel.version, name}));
    if (r.exit_code != 0) {
      return absl::NotFoundError(absl::StrCat(
          "kernel module '", name, "' not found for kernel ", kernel.version,
          ": ", absl::StripAsciiWhitespace(r.err)));
    }
    KernelModule m;
    m.name = name;
    for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
      if (absl::ConsumePrefix(&line, "filename:")) {
        m.path = std::string(absl::StripAsciiWhitespace(line));
      } else if (absl::ConsumePrefix(&line, "depends:")) {
        for (absl::string_view dep :
             absl::StrSplit(absl::StripAsciiWhitespace(line), ',', absl::SkipEmpty())) {
          m.depends.emplace_back(absl::StripAsciiWhitespace(dep));
        }
      } else if (absl::ConsumePrefix(&line, "name:")) {
        m.name = std::string(absl::StripAsciiWhitespace(line));
      }
    }
    if (m.path == "(builtin)") {
      builtin.insert(name);
      return absl::OkStatus();
    }
    if (m.path.empty()) {
      return absl::InternalError(absl::StrCat(
          "modinfo -k ", kernel.version, " ", name, " printed no filename"));
    }
    info[name] = m;
    return absl::OkStatus();
  };

  std::vector<KernelModule> order;
  std::set<std::string> done;
  std::vector<std::string> stack;  // for cycle detection
  // Depth-first, dependencies first.
  std::function<absl::Status(const std::string&)> visit =
      [&](const std::string& name) -> absl::Status {
    if (done.count(name) != 0) return absl::OkStatus();
    for (const std::string& s : stack) {
      if (s == name) {
        return absl::InvalidArgumentError(absl::StrCat(
            "module dependency cycle: ", absl::StrJoin(stack, " -> "), " -> ", name));
      }
    }
    VRPC_RETURN_IF_ERROR(lookup(name));
    if (builtin.count(name) != 0) {
      done.insert(name);
      return absl::OkStatus();
    }
    stack.push_back(name);
    const std::vector<std::string> deps = info[name].depends;
    for (const std::string& dep : deps) VRPC_RETURN_IF_ERROR(visit(dep));
    stack.pop_back();
    done.insert(name);
    order.push_back(info[name]);
    return absl::OkStatus();
  };
  for (const std::string& name : names) VRPC_RETURN_IF_ERROR(visit(name));
  return order;
}

absl::StatusOr<std::string> ReadModule(const KernelModule& module) {
  std::string tool = Decompressor(module.path);
  if (tool.empty()) return ReadFileToString(module.path);
  VRPC_ASSIGN_OR_RETURN(std::string path, FindTool(tool));
  VRPC_ASSIGN_OR_RETURN(CommandResult r, RunCommand({path, "-dc", module.path}));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("decompressing ", module.path, " with ",
                                            tool, " failed: ", r.err));
  }
  return r.out;
}

}  // namespace e2e
}  // namespace vrpc
