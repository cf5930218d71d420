# Kustomizations and HelmReleases must deploy as the workspace
# ServiceAccount and only into the workspace's namespaces.
#
# input.parameters.service_account_name is the ServiceAccount and
# input.parameters.namespaces lists the namespaces. An unset
# spec.serviceAccountName is allowed, because the operator sets it to the
# workspace ServiceAccount right after the object is created.
package tenancy.service_account_and_namespaces

deployer_kinds := {"Kustomization", "HelmRelease"}

violation contains occurrence if {
  obj := input.review.object
  deployer_kinds[obj.kind]
  account := obj.spec.serviceAccountName
  account != ""
  account != input.parameters.service_account_name
  occurrence := {
    "msg": sprintf("%s %s deploys as ServiceAccount %q, but its workspace deploys as %q", [
      obj.kind,
      object_ref(obj),
      account,
      input.parameters.service_account_name,
    ]),
    "violating_key": "spec.serviceAccountName",
    "recommended_value": input.parameters.service_account_name,
  }
}

violation contains occurrence if {
  obj := input.review.object
  deployer_kinds[obj.kind]
  some field in ["targetNamespace", "storageNamespace"]
  namespace := obj.spec[field]
  namespace != ""
  not namespace in input.parameters.namespaces
  occurrence := {
    "msg": sprintf("%s %s sets spec.%s to %q, which is not a namespace of its workspace (%s)", [
      obj.kind,
      object_ref(obj),
      field,
      namespace,
      concat(", ", input.parameters.namespaces),
    ]),
    "violating_key": concat(".", ["spec", field]),
  }
}

object_ref(obj) := sprintf("%s/%s", [
  object.get(obj, ["metadata", "namespace"], object.get(input.review, "namespace", "")),
  object.get(obj, ["metadata", "name"], ""),
])
