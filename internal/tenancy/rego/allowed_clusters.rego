# Kustomizations and HelmReleases may deploy to a remote cluster only with a
# kubeconfig that the workspace allows.
#
# input.parameters.allowed_clusters lists {"kubeConfig", "kind"} entries:
# the name of a Secret (kind "Secret", the default) or ConfigMap (kind
# "ConfigMap") in the object's namespace. An empty list allows no remote
# cluster, so spec.kubeConfig must stay unset.
package tenancy.allowed_clusters

deployer_kinds := {"Kustomization", "HelmRelease"}

violation contains occurrence if {
  obj := input.review.object
  deployer_kinds[obj.kind]
  some ref in kubeconfig_refs
  not allowed(ref)
  occurrence := {
    "msg": sprintf("%s %s deploys with the kubeconfig in %s %q, which is not an allowed cluster of its workspace", [
      obj.kind,
      object_ref(obj),
      ref.kind,
      ref.name,
    ]),
    "violating_key": ref.key,
  }
}

kubeconfig_refs contains {"kind": "Secret", "name": name, "key": "spec.kubeConfig.secretRef.name"} if {
  name := input.review.object.spec.kubeConfig.secretRef.name
}

kubeconfig_refs contains {"kind": "ConfigMap", "name": name, "key": "spec.kubeConfig.configMapRef.name"} if {
  name := input.review.object.spec.kubeConfig.configMapRef.name
}

allowed(ref) if {
  some cluster in input.parameters.allowed_clusters
  object.get(cluster, "kind", "Secret") == ref.kind
  cluster.kubeConfig == ref.name
}

object_ref(obj) := sprintf("%s/%s", [
  object.get(obj, ["metadata", "namespace"], object.get(input.review, "namespace", "")),
  object.get(obj, ["metadata", "name"], ""),
])
