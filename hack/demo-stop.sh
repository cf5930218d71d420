#!/usr/bin/env bash
# Stops the demo that hack/demo.sh started: first the manager, then the local
# control plane, which stops kube-apiserver and etcd. Each process gets
# SIGTERM and, when it has not exited after a timeout, SIGKILL.
#
# Usage: hack/demo-stop.sh [--quiet]
#   --quiet prints nothing when no demo is running.
set -euo pipefail

STOP_TIMEOUT="${DEMO_STOP_TIMEOUT:-60}" # seconds per process

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

demo_dir=.demo
quiet=0
if [[ "${1:-}" == --quiet ]]; then
  quiet=1
fi

log() {
  echo "demo-stop: $*"
}

# is_running reports whether pid runs the executable path. The check
# prevents signalling an unrelated process that reused the pid of a demo
# process that has exited.
is_running() {
  local pid="$1" executable="$2" cmdline
  # The process can exit between any two reads, so errors mean "not running".
  cmdline="$({ tr '\0' ' ' <"/proc/${pid}/cmdline"; } 2>/dev/null)" || return 1
  [[ "${cmdline}" == "${executable} "* || "${cmdline}" == "${root}/${executable} "* ]]
}

# child_pids prints the pids of the direct children of pid, read from /proc,
# because pgrep is not part of the required tools.
child_pids() {
  local parent="$1" stat fields
  for stat in /proc/[0-9]*/stat; do
    fields="$(cat "${stat}" 2>/dev/null)" || continue
    # The process name is in parentheses and may contain spaces, so the
    # fields are counted after its closing parenthesis: state, ppid, ...
    fields="${fields##*) }"
    read -r _ ppid _ <<<"${fields}"
    if [[ "${ppid}" == "${parent}" ]]; then
      stat="${stat#/proc/}"
      echo "${stat%/stat}"
    fi
  done
}

# stop_process stops the process of a pidfile and the children it had when
# the stop began. Its children are signalled only when it does not exit in
# time, because a clean exit of localcluster stops etcd and kube-apiserver.
# NOTE: when localcluster was killed with SIGKILL before this runs, its etcd
# and kube-apiserver are no longer its children, so they keep running.
stop_process() {
  local name="$1" pidfile="$2" executable="$3" pid children deadline
  [[ -f "${pidfile}" ]] || return 0
  pid="$(cat "${pidfile}")"
  if [[ ! "${pid}" =~ ^[0-9]+$ ]] || ! is_running "${pid}" "${executable}"; then
    rm -f "${pidfile}"
    return 0
  fi

  children="$(child_pids "${pid}")"
  log "stopping the ${name} (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while is_running "${pid}" "${executable}"; do
    if ((SECONDS >= deadline)); then
      log "the ${name} did not stop within ${STOP_TIMEOUT}s (DEMO_STOP_TIMEOUT); killing it"
      # shellcheck disable=SC2086 # children is a list of pids
      kill -KILL "${pid}" ${children} 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "${pidfile}"
  log "stopped the ${name}"
}

if [[ ! -f "${demo_dir}/manager.pid" && ! -f "${demo_dir}/localcluster.pid" ]]; then
  if [[ "${quiet}" != 1 ]]; then
    log "no demo is running"
  fi
  exit 0
fi

# Tell a demo that runs in the foreground that this stop was requested.
touch "${demo_dir}/stop-requested"
stop_process manager "${demo_dir}/manager.pid" bin/manager
stop_process "local control plane" "${demo_dir}/localcluster.pid" bin/localcluster
