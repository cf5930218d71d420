#!/usr/bin/env bash
# Builds the Flux kustomize-controller pinned in hack/flux/go.mod into
# bin/kustomize-controller, for the end-to-end tests. Does nothing when the
# binary already exists. Delete the binary to rebuild, for example after
# changing the pinned version.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${root}/bin"
target="${bin_dir}/kustomize-controller"

if [[ -x "${target}" ]]; then
	echo "build-flux: ${target} exists, skipping the build"
	exit 0
fi

version="$(cd "${root}/hack/flux" && go list -m -f '{{.Version}}' github.com/fluxcd/kustomize-controller)"
echo "build-flux: building kustomize-controller ${version} into ${target}"
echo "build-flux: a cold build takes several minutes on 2 cores"
mkdir -p "${bin_dir}"

# Build to a temporary name and rename, so that an interrupted build never
# leaves a partial binary that the existence check above would accept.
tmp="${target}.tmp.$$"
trap 'rm -f "${tmp}"' EXIT
(cd "${root}/hack/flux" && go build -trimpath -o "${tmp}" github.com/fluxcd/kustomize-controller)
mv "${tmp}" "${target}"
echo "build-flux: built ${target}"
