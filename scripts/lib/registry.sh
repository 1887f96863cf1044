# shellcheck shell=bash
# Sourced by scripts/demo and scripts/bench: throwaway `docker-registry` (CNCF distribution)
# instances on free 127.0.0.1 ports, each with its own storage under $REGISTRY_TMP, optional
# htpasswd Basic auth. Stops only the instances it started. Needs scripts/lib/env.sh sourced
# first (for $FERRY_ENV_STATE, so scripts/lib/env.sh can reap orphans of a killed script).

declare -gA REGISTRY_PID=() REGISTRY_HOST=()

registry_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# registry_start NAME [USER PASSWORD]: starts a registry (with Basic auth when USER is
# given); its host:port is then ${REGISTRY_HOST[NAME]}. A port another process grabbed
# between probe and bind is detected by the instance header, and another port is tried.
registry_start() {
  local name=$1 user=${2:-} pass=${3:-} dir="$REGISTRY_TMP/registry-$1" port instance pid attempt i auth=""
  for ((attempt = 0; attempt < 5; attempt++)); do
    rm -rf "$dir"
    mkdir -p "$dir/storage"
    port=$(registry_free_port)
    instance="ferry-$name-$$-$RANDOM$RANDOM"
    if [[ -n $user ]]; then
      htpasswd -Bbn "$user" "$pass" >"$dir/htpasswd" 2>/dev/null || return 1
      auth="auth: {htpasswd: {realm: $name, path: \"$dir/htpasswd\"}}"
    fi
    cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: "$dir/storage"
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: "$instance"
  headers:
    X-Ferry-Instance: ["$instance"]
$auth
CONFIG
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null 9>&- &
    pid=$!
    mkdir -p "$FERRY_ENV_STATE/registries"
    echo "$$" >"$FERRY_ENV_STATE/registries/$pid"
    for ((i = 0; i < 200; i++)); do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if curl -sS -o /dev/null -D - "http://127.0.0.1:$port/v2/" 2>/dev/null | grep -q "$instance"; then
        REGISTRY_PID[$name]=$pid
        REGISTRY_HOST[$name]=127.0.0.1:$port
        return 0
      fi
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$FERRY_ENV_STATE/registries/$pid"
    echo "registry $name did not start on port $port:" >&2
    tail -n 5 "$dir/registry.log" >&2 || true
  done
  return 1
}

# registry_stop NAME: kills it and deletes its storage.
registry_stop() {
  local name=$1 pid=${REGISTRY_PID[$1]:-}
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$FERRY_ENV_STATE/registries/$pid"
  fi
  unset "REGISTRY_PID[$name]" "REGISTRY_HOST[$name]"
  rm -rf "$REGISTRY_TMP/registry-$name"
}

registry_stop_all() {
  local name
  for name in "${!REGISTRY_PID[@]}"; do
    registry_stop "$name"
  done
}
