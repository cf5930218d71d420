#!/usr/bin/env bash
# Runs the operator on a local control plane with the samples of
# config/samples, prints what the operator made of them, and stays in the
# foreground until Ctrl-C or `make demo-stop` (from another shell).
#
# With DEMO_DETACH=1 it leaves the control plane and the manager running in
# the background and returns, so that a script can drive the demo; stop it
# with `make demo-stop`.
#
# State, logs and pidfiles go to .demo/ (git-ignored). A demo that is already
# running is stopped first, so running this twice in a row works.
set -euo pipefail

# Workspace of config/samples whose Ready condition the demo waits for.
SAMPLE_WORKSPACE="${SAMPLE_WORKSPACE:-team-a}"
# Timeouts, in seconds.
CLUSTER_TIMEOUT="${DEMO_CLUSTER_TIMEOUT:-120}"
MANAGER_TIMEOUT="${DEMO_MANAGER_TIMEOUT:-120}"
WORKSPACE_TIMEOUT="${DEMO_WORKSPACE_TIMEOUT:-120}"
AUDIT_TIMEOUT="${DEMO_AUDIT_TIMEOUT:-90}"
DETACH="${DEMO_DETACH:-0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

demo_dir=.demo
kubeconfig="${demo_dir}/kubeconfig"
ready_file="${demo_dir}/localcluster.ready"
cluster_log="${demo_dir}/localcluster.log"
manager_log="${demo_dir}/manager.log"
cluster_pidfile="${demo_dir}/localcluster.pid"
manager_pidfile="${demo_dir}/manager.pid"
# demo-stop.sh creates this file, so that the foreground demo can tell a
# requested stop from a crash.
stop_marker="${demo_dir}/stop-requested"
manager_namespace=trusted-delivery-system
probe_address=127.0.0.1:18081

MANAGER_CMD=(
  bin/manager
  --kubeconfig "${kubeconfig}"
  --leader-elect=false
  --metrics-bind-address 127.0.0.1:18080
  --health-probe-bind-address "${probe_address}"
  --webhook-host 127.0.0.1
  --webhook-port 19443
  --webhook-cert-dir "${demo_dir}/certs"
  --namespace "${manager_namespace}"
  --audit-debounce 5s
)

kubectl() {
  bin/kubectl --kubeconfig "${kubeconfig}" "$@"
}

log() {
  echo "demo: $*"
}

# fail prints the error and the tail of a log file, and exits. The EXIT trap
# then stops what the demo started.
fail() {
  local message="$1" logfile="${2:-}"
  echo "demo: error: ${message}" >&2
  if [[ -n "${logfile}" && -f "${logfile}" ]]; then
    echo "demo: last lines of ${logfile}:" >&2
    tail -n 30 "${logfile}" | sed 's/^/    /' >&2
  fi
  exit 1
}

# readyz_ok reports whether the manager's readiness endpoint returns 200. It
# uses bash's /dev/tcp, because curl is not part of the required tools.
readyz_ok() {
  local status
  status="$(timeout 2 bash -c '
    exec 3<>"/dev/tcp/${1%:*}/${1##*:}"
    printf "GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3
    head -n 1 <&3' _ "${probe_address}" 2>/dev/null)" || return 1
  [[ "${status}" == *" 200 "* ]]
}

setup_done=0
on_exit() {
  local status=$?
  if [[ "${setup_done}" != 1 ]]; then
    log "stopping what was started"
    hack/demo-stop.sh || true
  fi
  exit "${status}"
}

on_signal() {
  echo
  log "stopping the manager and the control plane"
  setup_done=1 # demo-stop.sh runs here, so that on_exit does not run it again
  hack/demo-stop.sh
  exit 0
}

# Stop a previous demo, in this or another shell.
hack/demo-stop.sh --quiet
rm -f "${stop_marker}"

log "building the tools, bin/manager and bin/localcluster (the first build takes minutes)"
make --no-print-directory tools build localcluster
if ! compgen -G "test/crds/flux/*.yaml" >/dev/null; then
  make --no-print-directory flux-crds
fi

trap on_exit EXIT
trap on_signal INT TERM

mkdir -p "${demo_dir}"
rm -rf "${demo_dir}/certs"
mkdir -p "${demo_dir}/certs"

# setsid puts each process in a session of its own, so that Ctrl-C reaches only
# this script, which then stops the manager before the control plane.
log "starting the local control plane (log: ${cluster_log})"
setsid bin/localcluster --kubeconfig "${kubeconfig}" --ready-file "${ready_file}" \
  --webhook-cert-dir "${demo_dir}/certs" \
  </dev/null >"${cluster_log}" 2>&1 &
cluster_pid=$!
echo "${cluster_pid}" >"${cluster_pidfile}"

deadline=$((SECONDS + CLUSTER_TIMEOUT))
until [[ -f "${ready_file}" ]]; do
  if ! kill -0 "${cluster_pid}" 2>/dev/null; then
    fail "the local control plane exited during startup" "${cluster_log}"
  fi
  if ((SECONDS >= deadline)); then
    fail "the local control plane was not ready after ${CLUSTER_TIMEOUT}s (DEMO_CLUSTER_TIMEOUT)" "${cluster_log}"
  fi
  sleep 0.5
done
log "control plane ready at $(cat "${ready_file}")"

kubectl create namespace "${manager_namespace}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null

log "starting the manager (log: ${manager_log})"
setsid "${MANAGER_CMD[@]}" </dev/null >"${manager_log}" 2>&1 &
manager_pid=$!
echo "${manager_pid}" >"${manager_pidfile}"

deadline=$((SECONDS + MANAGER_TIMEOUT))
until readyz_ok; do
  if ! kill -0 "${manager_pid}" 2>/dev/null; then
    fail "the manager exited during startup" "${manager_log}"
  fi
  if ((SECONDS >= deadline)); then
    fail "the manager was not ready at http://${probe_address}/readyz after ${MANAGER_TIMEOUT}s (DEMO_MANAGER_TIMEOUT)" \
      "${manager_log}"
  fi
  sleep 0.5
done
log "manager ready"

if [[ -f config/samples/kustomization.yaml ]]; then
  apply_args=(-k config/samples)
else
  apply_args=(-f config/samples)
fi
# Some samples live in namespaces that the sample Workspace creates, so the
# first apply can fail for them until the manager has reconciled it. Retry
# until everything is accepted.
log "applying config/samples (kubectl apply ${apply_args[*]})"
deadline=$((SECONDS + WORKSPACE_TIMEOUT))
until kubectl apply "${apply_args[@]}" >"${demo_dir}/apply.log" 2>&1; do
  if ((SECONDS >= deadline)); then
    fail "kubectl apply ${apply_args[*]} still failed after ${WORKSPACE_TIMEOUT}s (DEMO_WORKSPACE_TIMEOUT)" \
      "${demo_dir}/apply.log"
  fi
  sleep 1
done
cat "${demo_dir}/apply.log"

log "waiting up to ${WORKSPACE_TIMEOUT}s for Workspace ${SAMPLE_WORKSPACE} to be Ready"
workspace_ready=1
if ! kubectl wait --for=condition=Ready=True "workspace/${SAMPLE_WORKSPACE}" \
  --timeout="${WORKSPACE_TIMEOUT}s"; then
  workspace_ready=0
fi

# The sample Deployment violates baseline policies on purpose, so the audit
# that follows the policy changes marks the Workspace Compliant=False.
log "waiting up to ${AUDIT_TIMEOUT}s for the audit to report on Workspace ${SAMPLE_WORKSPACE}"
kubectl wait --for=condition=Compliant=False "workspace/${SAMPLE_WORKSPACE}" \
  --timeout="${AUDIT_TIMEOUT}s" || log "NOTE: no audit result yet; see ${manager_log}"

echo
echo "\$ kubectl get workspaces,policies,policysets,policyconfigs"
kubectl get workspaces,policies,policysets,policyconfigs
echo
echo "\$ kubectl get namespaces,serviceaccounts,rolebindings -l app.kubernetes.io/managed-by=trusted-delivery -A"
kubectl get namespaces,serviceaccounts,rolebindings -l app.kubernetes.io/managed-by=trusted-delivery -A
echo
echo "\$ kubectl get reports -A"
kubectl get reports -A || true
echo
echo "\$ kubectl apply -f config/samples/denied_pod.yaml   # a privileged Pod"
kubectl apply -f config/samples/denied_pod.yaml 2>&1 | grep -v '^Warning: ' || true
echo
echo "\$ kubectl describe workspace ${SAMPLE_WORKSPACE}"
kubectl describe workspace "${SAMPLE_WORKSPACE}" || true
echo
if [[ "${workspace_ready}" != 1 ]]; then
  log "NOTE: Workspace ${SAMPLE_WORKSPACE} was not Ready after ${WORKSPACE_TIMEOUT}s;" \
    "its conditions above and ${manager_log} say why"
fi

cat <<EOF
The demo is running: etcd and kube-apiserver on 127.0.0.1, and the manager.
  Use it with:    export KUBECONFIG=${root}/${kubeconfig}
                  bin/kubectl get workspaces,policies
  Logs:           ${root}/${cluster_log}
                  ${root}/${manager_log}
  Stop it with:   make demo-stop
EOF

setup_done=1
if [[ "${DETACH}" == 1 ]]; then
  log "DEMO_DETACH=1: leaving the demo running in the background"
  exit 0
fi

echo "  or press Ctrl-C here."
# wait returns when either process exits, or at once when a trapped signal
# arrives; on_signal then runs.
wait -n "${manager_pid}" "${cluster_pid}" || true
if [[ -f "${stop_marker}" ]]; then
  # demo-stop.sh is stopping both processes; wait for the other one too.
  wait "${manager_pid}" "${cluster_pid}" 2>/dev/null || true
  log "stopped by demo-stop"
  exit 0
fi

echo "demo: error: the manager or the control plane exited on its own; see ${manager_log} and ${cluster_log}" >&2
hack/demo-stop.sh
exit 1
