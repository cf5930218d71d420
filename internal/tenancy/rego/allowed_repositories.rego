# Flux sources may fetch only from the URLs that the workspace allows.
#
# input.parameters.allowed_repositories lists {"kind", "url", "match"}
# entries: kind is GitRepository, OCIRepository, HelmRepository or Bucket,
# and match is "Exact" (the default) or "Prefix". A Bucket's URL is its
# spec.endpoint, a slash and its spec.bucketName. An empty list allows no
# source.
#
# URLs are compared after normalize: without the scheme and user
# information, with a lower-case host, and without trailing slashes or a
# trailing ".git". A Prefix entry allows its own URL and every URL below it
# at a path boundary, so "github.com/org" allows "github.com/org/app" but
# not "github.com/organisation".
package tenancy.allowed_repositories

source_kinds := {"GitRepository", "OCIRepository", "HelmRepository", "Bucket"}

violation contains occurrence if {
  obj := input.review.object
  source_kinds[obj.kind]
  source := source_location(obj)
  not allowed(obj.kind, source.url)
  occurrence := {
    "msg": sprintf("%s %s uses %s %q, which is not an allowed %s of its workspace", [
      obj.kind,
      object_ref(obj),
      source.key,
      source.url,
      obj.kind,
    ]),
    "violating_key": source.key,
  }
}

source_location(obj) := {"key": "spec.url", "url": obj.spec.url} if {
  obj.kind != "Bucket"
}

source_location(obj) := {"key": "spec.endpoint", "url": url} if {
  obj.kind == "Bucket"
  url := concat("/", [trim_right(obj.spec.endpoint, "/"), obj.spec.bucketName])
}

allowed(kind, url) if {
  some entry in input.parameters.allowed_repositories
  entry.kind == kind
  url_matches(entry, normalize(url))
}

url_matches(entry, url) if {
  object.get(entry, "match", "Exact") != "Prefix"
  url == normalize(entry.url)
}

url_matches(entry, url) if {
  entry.match == "Prefix"
  under_prefix(url, normalize(entry.url))
}

under_prefix(url, prefix) if url == prefix

under_prefix(url, prefix) if startswith(url, concat("", [prefix, "/"]))

# normalize returns host and path of url: "https://git@GitHub.com/org/app.git/"
# becomes "github.com/org/app".
normalize(url) := joined if {
  rest := without_scheme(trim_space(url))
  parts := split(rest, "/")
  host := lower(without_userinfo(parts[0]))
  path := trim_right(concat("/", array.slice(parts, 1, count(parts))), "/")
  joined := join_host_path(host, trim_right(trim_suffix(path, ".git"), "/"))
}

# without_scheme drops "<scheme>://". A URL in scp syntax, user@host:path,
# has no scheme; its first colon becomes a slash.
without_scheme(s) := substring(s, indexof(s, "://") + 3, -1) if {
  contains(s, "://")
} else := regex.replace(s, `^([^/:@]+@[^/:]+):`, "$1/")

without_userinfo(authority) := parts[count(parts) - 1] if {
  parts := split(authority, "@")
}

join_host_path(host, "") := host

join_host_path(host, path) := concat("/", [host, path]) if path != ""

object_ref(obj) := sprintf("%s/%s", [
  object.get(obj, ["metadata", "namespace"], object.get(input.review, "namespace", "")),
  object.get(obj, ["metadata", "name"], ""),
])
