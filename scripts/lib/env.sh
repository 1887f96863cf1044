# Sourced by scripts/env-up, scripts/env-down and scripts/test: starts dockerd when none
# answers and stops only the daemon it started itself. Touches no registry or container.

FERRY_ENV_STATE=${FERRY_ENV_STATE:-/tmp/ferry-test-env}
FERRY_DOCKERD_PID="$FERRY_ENV_STATE/dockerd.pid"
FERRY_DOCKERD_LOG="$FERRY_ENV_STATE/dockerd.log"

# ferry_env_up: make `docker info` answer; start /usr/sbin/dockerd if it does not.
# Sets FERRY_ENV_STARTED=1 when this call started the daemon.
ferry_env_up() {
  FERRY_ENV_STARTED=0
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p "$FERRY_ENV_STATE"
  # A pid file whose process is gone is stale (a killed run); a live one is still starting.
  if [[ -f $FERRY_DOCKERD_PID ]] && ! kill -0 "$(cat "$FERRY_DOCKERD_PID")" 2>/dev/null; then
    rm -f "$FERRY_DOCKERD_PID"
  fi
  if [[ ! -f $FERRY_DOCKERD_PID ]]; then
    echo "env: starting dockerd (log: $FERRY_DOCKERD_LOG)"
    setsid /usr/sbin/dockerd >"$FERRY_DOCKERD_LOG" 2>&1 </dev/null &
    echo $! >"$FERRY_DOCKERD_PID"
    FERRY_ENV_STARTED=1
  fi
  local i
  for ((i = 0; i < 120; i++)); do
    if docker info >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$(cat "$FERRY_DOCKERD_PID")" 2>/dev/null; then
      break
    fi
    sleep 0.5
  done
  echo "env: dockerd did not come up; last lines of $FERRY_DOCKERD_LOG:" >&2
  tail -n 30 "$FERRY_DOCKERD_LOG" >&2 || true
  ferry_env_down
  return 1
}

# ferry_env_down: stop the dockerd that ferry_env_up started, if any; leave others alone.
ferry_env_down() {
  ferry_env_reap
  [[ -f $FERRY_DOCKERD_PID ]] || return 0
  local pid i
  pid=$(cat "$FERRY_DOCKERD_PID")
  if kill -0 "$pid" 2>/dev/null; then
    echo "env: stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "env: dockerd ignored SIGTERM for 30 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$FERRY_DOCKERD_PID"
}

# ferry_env_reap: kill docker-registry processes that e2e tests recorded under
# $FERRY_ENV_STATE/registries/ and whose test process is gone (killed before Drop ran).
# Registries of a test binary that is still running are left alone.
ferry_env_reap() {
  local file pid owner
  for file in "$FERRY_ENV_STATE"/registries/*; do
    [[ -f $file ]] || continue
    pid=$(basename "$file")
    owner=$(cat "$file" 2>/dev/null || true)
    if [[ -n $owner ]] && kill -0 "$owner" 2>/dev/null; then
      continue
    fi
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == docker-registry ]]; then
      echo "env: killing orphaned docker-registry (pid $pid)"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
  done
}
