# shellcheck shell=bash
# Sourced by scripts/bench: throwaway `docker-registry` (distribution 2.8) instances on
# free 127.0.0.1 ports, each with its own storage under $BENCH_TMP. Stops only its own.

BENCH_D=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
declare -gA BENCH_REG_PID=() BENCH_REG_HOST=()

bench_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_registry_start NAME: starts a registry; its host:port is then ${BENCH_REG_HOST[NAME]}.
# A port another process grabbed between probe and bind is detected by the instance header.
bench_registry_start() {
  local name=$1 dir="$BENCH_TMP/registry-$1" port instance pid attempt i
  for ((attempt = 0; attempt < 5; attempt++)); do
    rm -rf "$dir"
    mkdir -p "$dir/storage"
    port=$(bench_free_port)
    instance="bench-$name-$$-$RANDOM$RANDOM"
    cat >"$dir/config.yml" <<EOF
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
http:
  addr: 127.0.0.1:$port
  secret: "$instance"
  headers:
    X-Bench-Instance: ["$instance"]
EOF
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null 9>&- &
    pid=$!
    # Lets scripts/lib/env.sh reap it should this script be killed before its trap runs.
    mkdir -p "$FERRY_ENV_STATE/registries"
    echo "$$" >"$FERRY_ENV_STATE/registries/$pid"
    for ((i = 0; i < 200; i++)); do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if "$BENCH_D/check.py" probe "127.0.0.1:$port" "$instance"; then
        BENCH_REG_PID[$name]=$pid
        # shellcheck disable=SC2034 # read by scripts/bench
        BENCH_REG_HOST[$name]=127.0.0.1:$port
        return 0
      fi
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$FERRY_ENV_STATE/registries/$pid"
    echo "bench: registry $name did not start on port $port:" >&2
    tail -n 5 "$dir/registry.log" >&2 || true
  done
  return 1
}

# bench_registry_stop NAME: kills it and deletes its storage.
bench_registry_stop() {
  local name=$1 pid=${BENCH_REG_PID[$1]:-}
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$FERRY_ENV_STATE/registries/$pid"
  fi
  unset "BENCH_REG_PID[$name]" "BENCH_REG_HOST[$name]"
  rm -rf "$BENCH_TMP/registry-$name"
}

bench_registry_stop_all() {
  local name
  for name in "${!BENCH_REG_PID[@]}"; do
    bench_registry_stop "$name"
  done
}

# bench_registry_bytes NAME: bytes its storage holds on disk.
bench_registry_bytes() {
  du -sb "$BENCH_TMP/registry-$1/storage" | cut -f1
}
