#!/usr/bin/env bash
# Builds the tools pinned in hack/tools/go.mod into bin/: the local control
# plane (etcd, kube-apiserver, kubectl) and controller-gen. A tool is built
# only when its binary is missing, so running this again is cheap. Delete a
# binary to rebuild it.
#
# Usage: hack/build-tools.sh [TOOL...]
#   TOOL is etcd, kube-apiserver, kubectl or controller-gen; the default is all.
#   LOCALBIN overrides the output directory (default: bin/ at the repository root).
#
# A cold build takes minutes on 2 cores (kube-apiserver is the slowest);
# later builds of a missing binary reuse the Go build cache.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${root}/hack/tools"
bin_dir="${LOCALBIN:-${root}/bin}"

# Tool name -> Go package in the hack/tools module.
declare -A packages=(
  [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [controller-gen]=sigs.k8s.io/controller-tools/cmd/controller-gen
)
all_tools=(etcd kube-apiserver kubectl controller-gen)

if [[ $# -gt 0 ]]; then
  requested=("$@")
else
  requested=("${all_tools[@]}")
fi
for tool in "${requested[@]}"; do
  if [[ -z "${packages[${tool}]+set}" ]]; then
    echo "unknown tool ${tool}: expected one of ${all_tools[*]}" >&2
    exit 2
  fi
done

mkdir -p "${bin_dir}"

# Serialise builds, because two `make` runs at once would otherwise both build
# the same binary and compete for the CPU.
exec 9>"${bin_dir}/.build-tools.lock"
if ! flock --nonblock 9; then
  echo "waiting for another hack/build-tools.sh to finish (lock ${bin_dir}/.build-tools.lock)"
  flock 9
fi

# kube-apiserver and kubectl report the version they were built from, as
# the Kubernetes release build does, so that `kubectl version` shows v1.37.2
# and not v0.0.0-master.
kube_version="$(cd "${tools_dir}" && GOWORK=off go list -m -f '{{.Version}}' k8s.io/kubernetes)"
kube_minor="${kube_version#v*.}"
kube_minor="${kube_minor%%.*}"
kube_major="${kube_version#v}"
kube_major="${kube_major%%.*}"
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X ${pkg}.gitVersion=${kube_version}"
  kube_ldflags+=" -X ${pkg}.gitMajor=${kube_major}"
  kube_ldflags+=" -X ${pkg}.gitMinor=${kube_minor}"
  kube_ldflags+=" -X ${pkg}.gitTreeState=clean"
done

build_log="$(mktemp)"
trap 'rm -f "${build_log}"' EXIT

for tool in "${requested[@]}"; do
  out="${bin_dir}/${tool}"
  if [[ -x "${out}" ]]; then
    echo "${out#"${root}"/}: present, not rebuilt"
    continue
  fi

  ldflags=""
  case "${tool}" in
    kube-apiserver | kubectl) ldflags="${kube_ldflags}" ;;
  esac

  printf '%s: building %s ... ' "${out#"${root}"/}" "${packages[${tool}]}"
  start="${SECONDS}"
  # Build to a temporary name and rename, so that an interrupted build never
  # leaves a binary that the existence check above would accept.
  if ! (cd "${tools_dir}" &&
    GOWORK=off go build -ldflags "${ldflags}" -o "${out}.tmp" "${packages[${tool}]}") >"${build_log}" 2>&1; then
    echo "failed after $((SECONDS - start))s"
    cat "${build_log}" >&2
    rm -f "${out}.tmp"
    exit 1
  fi
  mv -f "${out}.tmp" "${out}"
  echo "done in $((SECONDS - start))s"
done
