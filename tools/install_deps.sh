#!/usr/bin/env bash
# Installs every Debian 12 package that vrpc's build, tests and QEMU
# end-to-end tests need. Idempotent and fast when everything is present:
# apt is only touched when a package is missing.
#
#   tools/install_deps.sh            install what is missing
#   tools/install_deps.sh --check    only report; exit 1 if something is missing
#   tools/install_deps.sh --list     print the package list and exit
#
# Runs as root (CI, fresh machines); falls back to sudo when run as another
# user and sudo exists.
set -euo pipefail

# Required: the build fails or tests cannot run without these.
REQUIRED_PACKAGES=(
  # Build system. Bazel 4.2.3 (Debian's bootstrap build) plus the rules_java
  # it needs offline (/usr/share/bazel/rules/java); pulls in a JDK.
  bazel-bootstrap
  bazel-rules-java
  build-essential
  git
  python3
  # Protocol Buffers and gRPC (protoc, grpc_cpp_plugin, headers, libraries).
  protobuf-compiler
  protobuf-compiler-grpc
  libprotobuf-dev
  libprotoc-dev
  libgrpc++-dev
  # libcrypto (SHA-256 of transferred files).
  libssl-dev
  # C++ libraries.
  libabsl-dev
  liburing-dev
  libgtest-dev
  libgmock-dev
  googletest
  libbenchmark-dev
  # clang toolchain for --config=clang/asan/ubsan/tsan/fuzz (sanitizer and
  # libFuzzer runtimes, lld).
  clang-14
  libclang-rt-14-dev
  lld-14
  # QEMU end-to-end tests: a Debian kernel as the guest kernel
  # (/boot/vmlinuz-*, /lib/modules/*, including vsock modules), a static
  # busybox and cpio for the initramfs, compressors for kernel modules.
  qemu-system-x86
  qemu-utils
  linux-image-amd64
  busybox-static
  cpio
  zstd
  xz-utils
  kmod
  # Python gRPC/protobuf, for interoperability tests and tools.
  python3-grpcio
  python3-protobuf
  # Debugging and memory checking.
  valgrind
)

# Nice to have; a failure to install these is only a warning.
OPTIONAL_PACKAGES=(
  linux-perf
)

# Commands/paths that must exist afterwards.
REQUIRED_PATHS=(
  /usr/bin/bazel
  /usr/share/bazel/rules/java/WORKSPACE
  /usr/bin/protoc
  /usr/bin/grpc_cpp_plugin
  /usr/bin/clang-14
  /usr/bin/clang++-14
  /usr/bin/qemu-system-x86_64
  /bin/busybox
)

log() { echo "install_deps: $*" >&2; }

mode=install
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --list)
    printf '%s\n' "${REQUIRED_PACKAGES[@]}" "${OPTIONAL_PACKAGES[@]}"
    exit 0
    ;;
  -h|--help)
    sed -n '2,12p' "$0"
    exit 0
    ;;
  *)
    log "unknown argument: $1 (try --help)"
    exit 2
    ;;
esac

# Prints the packages among "$@" that are not installed, using one
# dpkg-query call (${Status} is "install ok installed" for installed ones).
missing_of() {
  [[ $# -gt 0 ]] || return 0
  local -A ok=()
  local name status
  while read -r name status; do
    [[ "$status" == "install ok installed" ]] && ok["$name"]=1
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  local pkg
  for pkg in "$@"; do
    [[ -n "${ok[$pkg]:-}" ]] || echo "$pkg"
  done
}

mapfile -t missing_required < <(missing_of "${REQUIRED_PACKAGES[@]}")
mapfile -t missing_optional < <(missing_of "${OPTIONAL_PACKAGES[@]}")

if [[ ${#missing_required[@]} -eq 0 && ${#missing_optional[@]} -eq 0 ]]; then
  log "all ${#REQUIRED_PACKAGES[@]} required and ${#OPTIONAL_PACKAGES[@]} optional packages are installed"
  exit 0
fi

if [[ "$mode" == check ]]; then
  [[ ${#missing_required[@]} -gt 0 ]] && log "missing required: ${missing_required[*]}"
  [[ ${#missing_optional[@]} -gt 0 ]] && log "missing optional: ${missing_optional[*]}"
  [[ ${#missing_required[@]} -eq 0 ]]
  exit $?
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -E)
  else
    log "must run as root (or with sudo available) to install: ${missing_required[*]} ${missing_optional[*]}"
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(
  -o Acquire::Retries=3
  -o DPkg::Lock::Timeout=600
  -o Dpkg::Options::=--force-confdef
  -o Dpkg::Options::=--force-confold
)

apt_install() {
  "${SUDO[@]}" apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "$@"
}

log "apt-get update"
"${SUDO[@]}" apt-get "${APT_OPTS[@]}" update -qq || {
  log "apt-get update failed; retrying once"
  sleep 5
  "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update -qq
}

if [[ ${#missing_required[@]} -gt 0 ]]; then
  log "installing: ${missing_required[*]}"
  apt_install "${missing_required[@]}" || {
    log "install failed; retrying once"
    sleep 5
    apt_install "${missing_required[@]}"
  }
fi

if [[ ${#missing_optional[@]} -gt 0 ]]; then
  log "installing optional: ${missing_optional[*]}"
  apt_install "${missing_optional[@]}" || log "warning: could not install optional packages: ${missing_optional[*]}"
fi

mapfile -t still_missing < <(missing_of "${REQUIRED_PACKAGES[@]}")
if [[ ${#still_missing[@]} -gt 0 ]]; then
  log "still missing after install: ${still_missing[*]}"
  exit 1
fi
for path in "${REQUIRED_PATHS[@]}"; do
  if [[ ! -e "$path" ]]; then
    log "expected $path after installing, but it is not there"
    exit 1
  fi
done
log "done"
