#!/usr/bin/env bash
# Generates the Flux CRDs that envtest installs (test/crds/flux) from the Go
# types of the Flux API modules that the root go.mod requires. The Flux API
# modules ship Go types but no CRD YAML, so controller-gen builds the YAML.
#
# Every version package of each module is passed to controller-gen. The
# versions that Flux no longer serves carry +kubebuilder:skipversion, so the
# output contains only the served versions: v1 for Kustomization and the
# source kinds, v2 for HelmRelease (as of kustomize-controller/api v1.9.6,
# source-controller/api v1.9.6 and helm-controller/api v1.6.5).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
controller_gen="${root}/bin/controller-gen"
out_dir="test/crds/flux"

if [[ ! -x "${controller_gen}" ]]; then
	echo "flux-crds: ${controller_gen} not found: run \`make tools\` first" >&2
	exit 1
fi

cd "${root}"
for module in kustomize-controller/api source-controller/api helm-controller/api; do
	echo "flux-crds: github.com/fluxcd/${module} $(go list -m -f '{{.Version}}' "github.com/fluxcd/${module}")"
done

# Remove the old files first, so that a kind dropped upstream does not linger.
mkdir -p "${out_dir}"
rm -f "${out_dir}"/*.yaml
"${controller_gen}" crd:crdVersions=v1 \
	paths=github.com/fluxcd/kustomize-controller/api/... \
	paths=github.com/fluxcd/source-controller/api/... \
	paths=github.com/fluxcd/helm-controller/api/... \
	output:crd:dir="${out_dir}"
echo "flux-crds: wrote $(ls "${out_dir}"/*.yaml | wc -l) CRDs to ${out_dir}"
