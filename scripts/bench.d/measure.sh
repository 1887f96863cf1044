# shellcheck shell=bash
# shellcheck disable=SC2154 # the variables named below come from scripts/bench
# Sourced by scripts/bench: the measured runs. Each group starts its own fresh target
# registry and records one row per measurement (key, round, µs, peak RSS KiB, exit code,
# check verdict, extra file, command) in $results for report.py.
#
# Needs from scripts/bench: BENCH_TMP, BENCH_RUN, root, ferry, jobs, src, tags_tsv,
# tag_count, results, check_py, note, die; sets failures.

failures=0

# The registries whose access logs a measurement counts requests in (names given to
# registry_start): the source of the fixtures it reads, the target it writes.
count_src=source
count_dst=""

# log_lines NAME: lines in registry NAME's log so far (0 when it has none).
log_lines() {
  local file="$REGISTRY_TMP/registry-$1/registry.log"
  if [[ -n $1 && -f $file ]]; then wc -l <"$file"; else echo 0; fi
}

# log_counts NAME SIDE FROM: KEY=VALUE request counts of registry NAME's access log after
# line FROM, each key prefixed with SIDE (src_/dst_): manifest GETs ("pulls" on a source),
# HEADs, blob GETs, blob PUTs (finished uploads), mounts, manifest PUTs, and requests
# other than HEAD and the /v2/ ping.
log_counts() {
  local file="$REGISTRY_TMP/registry-$1/registry.log"
  [[ -n $1 && -f $file ]] || return 0
  tail -n "+$(($3 + 1))" "$file" | awk -v side="$2" '
    match($0, /"[A-Z]+ [^ ]+ HTTP\/[0-9.]+"/) {
      split(substr($0, RSTART + 1, RLENGTH - 2), r, " ")
      m = r[1]; u = r[2]; n++
      if (m == "HEAD") head++
      else if (u != "/v2/") other++
      if (m == "GET" && u ~ /\/manifests\//) mget++
      if (m == "GET" && u ~ /\/blobs\/sha256:/) bget++
      if (m == "PUT" && u ~ /\/blobs\/uploads\//) bput++
      if (m == "POST" && u ~ /mount=/) mount++
      if (m == "PUT" && u ~ /\/manifests\//) mput++
    }
    END {
      printf "%srequests=%d\n%shead=%d\n%snot_head=%d\n%smanifest_get=%d\n", side, n, side, head, side, other, side, mget
      printf "%sblob_get=%d\n%sblob_put=%d\n%smount=%d\n%smanifest_put=%d\n", side, bget, side, bput, side, mount, side, mput
    }'
}

# measure KEY ROUND EXTRA TARGET CMD...: runs CMD once under wall clock and
# /usr/bin/time -f %M; output in $BENCH_TMP/logs/KEY.rROUND.log, request counts of
# $count_src and $count_dst in KEY.rROUND.counts. EXTRA: a file render reads (ferry
# report, loop phases) or -.
measure() {
  local key=$1 round=$2 extra=$3 target=$4 log rss t0 t1 shown src_from dst_from
  shift 4
  log="$BENCH_TMP/logs/$key.r$round.log"
  rss="$BENCH_TMP/logs/$key.r$round.rss"
  m_counts="$BENCH_TMP/logs/$key.r$round.counts"
  m_rc=0
  src_from=$(log_lines "$count_src")
  dst_from=$(log_lines "$count_dst")
  t0=${EPOCHREALTIME/./}
  timeout 900 /usr/bin/time -f %M -o "$rss" "$@" >"$log" 2>&1 </dev/null || m_rc=$?
  t1=${EPOCHREALTIME/./}
  # The registries write their access log line when the answer is sent: let them finish.
  sleep 0.2
  { log_counts "$count_src" src_ "$src_from"; log_counts "$count_dst" dst_ "$dst_from"; } >"$m_counts"
  m_key=$key m_round=$round m_extra=$extra m_us=$((t1 - t0))
  m_rss=$(tail -n 1 "$rss" 2>/dev/null || true)
  [[ $m_rss =~ ^[0-9]+$ ]] || m_rss=-
  shown=$(printf '%q ' "$@")
  shown=${shown% }
  shown=${shown//"$ferry"/target/release/ferry}
  shown=${shown//"$root"\//}
  shown=${shown//"$BENCH_TMP"/\$TMP}
  shown=${shown//"$src"/\$SRC}
  [[ -z $target ]] || shown=${shown//"$target"/\$TARGET}
  shown=${shown//.r$round./.}
  m_cmd=$shown
  note "$(printf '%-20s %7.2f s  exit %d  peak RSS %s KiB' "$key" \
    "$((m_us / 10000))e-2" "$m_rc" "$m_rss")"
  if ((m_rc != 0)); then
    tail -n 20 "$log" | sed 's/^/    | /'
  fi
}

# verify CHECK...: runs the check of the last measurement and records its row.
verify() {
  local verdict
  if ((m_rc != 0)); then
    verdict="not checked (exit $m_rc)"
  elif verdict=$("$@" 2>&1); then
    verdict="ok: $verdict"
  else
    verdict="check failed: ${verdict//$'\n'/ }"
  fi
  note "    check: $verdict"
  [[ $verdict == ok:* ]] || failures=$((failures + 1))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m_key" "$m_round" "$m_us" "$m_rss" "$m_rc" \
    "$verdict" "$m_extra" "$m_counts" "$m_cmd" >>"$results"
}

# check_run REPORT COPIED SKIPPED TARGET STYLE [TAGS_TSV]: ferry's report totals (unless
# REPORT is -) and every tag of TAGS_TSV (default: the fixtures) at TARGET (STYLE flat:
# mirror/bench_app1, base: mirror/app1).
check_run() {
  local totals="" tsv=${6:-$tags_tsv}
  if [[ $1 != - ]]; then
    totals=$("$root/$check_py" ferry "$1" "$2" "$3") || { echo "$totals"; return 1; }
    totals="$totals; "
  fi
  echo "$totals$("$root/$check_py" target "$4" "$tsv" "$5")"
}

# ferry_config NAME TARGET [IMAGES_YAML]: a config directory mirroring every fixture (or
# the images of IMAGES_YAML) to TARGET/mirror.
ferry_config() {
  local dir="$BENCH_TMP/config-$1"
  mkdir -p "$dir"
  cp "${3:-$BENCH_TMP/images.yaml}" "$dir/images.yaml"
  printf '%s\n' 'stages:' '  mirror:' "    registry: $2/mirror" '    rules:' \
    "      - match: '**'" "        target: '{flat}'" >"$dir/rules.yaml"
  echo "$dir"
}

# ferry_sync KEY ROUND TRANSPORT CONFIG STATE TARGET: one measured `ferry sync`.
ferry_sync() {
  local key=$1 round=$2 transport=$3 config=$4 state=$5 target=$6
  local report="$BENCH_TMP/logs/$key.r$round.json"
  measure "$key" "$round" "$report" "$target" \
    "$ferry" sync -c "$config" --transport "$transport" --jobs "$jobs" \
    --report "$report" --state "$state"
  m_report=$report
}

daemon_empty() {
  bench_images_remove "ferry.bench.run=$BENCH_RUN" ||
    die "cannot empty the daemon of fixture images"
}

# fresh_target NAME: starts a registry for one group; sets target (and count_dst, whose
# requests measure counts).
fresh_target() {
  registry_start "$1" || die "cannot start a target registry"
  target=${REGISTRY_HOST[$1]}
  count_dst=$1
}

# The plain sequential docker CLI loop, from an empty daemon to a fresh target; then the
# incremental run: the new tags only (the loop is given just them: a generous baseline),
# from an empty daemon again (a CI runner starts empty every time).
run_loop() {
  local round=$1 phases="$BENCH_TMP/logs/loop.r$1.phases"
  daemon_empty
  fresh_target "loop-$round"
  measure loop "$round" "$phases" "$target" \
    bash "$root/scripts/bench.d/docker-loop.sh" "$src" "$target" "$tags_tsv" "$phases"
  verify check_run - - - "$target" flat
  push_floor "$round" "$target"
  daemon_empty
  phases="$BENCH_TMP/logs/loop_inc.r$round.phases"
  measure loop_inc "$round" "$phases" "$target" \
    bash "$root/scripts/bench.d/docker-loop.sh" "$src" "$target" "$tags_inc_tsv" "$phases"
  verify check_run - - - "$target" flat "$tags_all_tsv"
  registry_stop "loop-$round"
}

# push_floor ROUND OLD_TARGET: the daemon's own floor for the copy: `docker push` of
# every image the loop just pushed to OLD_TARGET (layers in the daemon, nothing to pull),
# $jobs at once, to a fresh target: the compress + upload time no daemon-driven copy beats.
push_floor() {
  local round=$1 old=$2 list="$BENCH_TMP/push-floor.txt" ref
  local loop_target=$target loop_dst=$count_dst
  fresh_target "floor-$round"
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "^$old/" | sort -u >"$list.old"
  : >"$list"
  while read -r ref; do
    docker tag "$ref" "$target/${ref#"$old"/}" && echo "$target/${ref#"$old"/}" >>"$list"
  done <"$list.old"
  measure push_floor "$round" - "$target" xargs -P "$jobs" -n 1 -a "$list" docker push -q
  verify check_pushed "$target" "$list"
  registry_stop "floor-$round"
  target=$loop_target count_dst=$loop_dst
}

# check_pushed HOST LIST: every reference of LIST serves a manifest on HOST.
check_pushed() {
  local ref repo tag n=0
  while read -r ref; do
    repo=${ref#"$1"/}
    tag=${repo##*:}
    repo=${repo%:*}
    curl -sfI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://$1/v2/$repo/manifests/$tag" >/dev/null || { echo "$ref missing"; return 1; }
    n=$((n + 1))
  done <"$2"
  echo "all $n images pushed"
}

# ferry docker transport: cold (empty daemon), warm (the cold run's layers still in the
# daemon, fresh target and state), no-op (the warm run's target and state again), then
# incremental (new tags added to the config, the warm run's target and state, an empty
# daemon: a CI runner starts empty every time).
run_ferry_docker() {
  local round=$1 config state
  daemon_empty
  fresh_target "cold-$round"
  config=$(ferry_config "cold-$round" "$target")
  ferry_sync ferry_docker_cold "$round" docker "$config" "$BENCH_TMP/state-cold-$round/state.json" "$target"
  verify check_run "$m_report" "$tag_count" 0 "$target" flat
  registry_stop "cold-$round"

  fresh_target "warm-$round"
  config=$(ferry_config "warm-$round" "$target")
  state="$BENCH_TMP/state-warm-$round/state.json"
  ferry_sync ferry_docker_warm "$round" docker "$config" "$state" "$target"
  verify check_run "$m_report" "$tag_count" 0 "$target" flat
  ferry_sync ferry_docker_noop "$round" docker "$config" "$state" "$target"
  verify check_run "$m_report" 0 "$tag_count" "$target" flat
  daemon_empty
  config=$(ferry_config "warm-inc-$round" "$target" "$BENCH_TMP/images-inc.yaml")
  ferry_sync ferry_docker_inc "$round" docker "$config" "$state" "$target"
  verify check_run "$m_report" "$inc_count" "$tag_count" "$target" flat "$tags_all_tsv"
  registry_stop "warm-$round"
}

# skopeo sync --all from the YAML source list: cold to a fresh target, then again; then
# with the new tags in the list.
run_skopeo() {
  local round=$1 key
  fresh_target "skopeo-$round"
  for key in skopeo_cold skopeo_noop; do
    measure "$key" "$round" - "$target" \
      skopeo sync --all --src yaml --dest docker --dest-tls-verify=false \
      "$BENCH_TMP/skopeo.yaml" "$target/mirror"
    verify check_run - - - "$target" base
  done
  measure skopeo_inc "$round" - "$target" \
    skopeo sync --all --src yaml --dest docker --dest-tls-verify=false \
    "$BENCH_TMP/skopeo-inc.yaml" "$target/mirror"
  verify check_run - - - "$target" base "$tags_all_tsv"
  registry_stop "skopeo-$round"
}

# ferry registry transport: cold (fresh target, fresh .ferry/blobs), then no-op, then
# incremental (new tags in the config, same target, state and blob cache).
run_ferry_registry() {
  local round=$1 config state
  fresh_target "registry-$round"
  config=$(ferry_config "registry-$round" "$target")
  state="$BENCH_TMP/state-registry-$round/state.json"
  ferry_sync ferry_registry_cold "$round" registry "$config" "$state" "$target"
  verify check_run "$m_report" "$tag_count" 0 "$target" flat
  ferry_sync ferry_registry_noop "$round" registry "$config" "$state" "$target"
  verify check_run "$m_report" 0 "$tag_count" "$target" flat
  config=$(ferry_config "registry-inc-$round" "$target" "$BENCH_TMP/images-inc.yaml")
  ferry_sync ferry_registry_inc "$round" registry "$config" "$state" "$target"
  verify check_run "$m_report" "$inc_count" "$tag_count" "$target" flat "$tags_all_tsv"
  registry_stop "registry-$round"
}

# The byte-copy limit: cp of the fixtures' blob files in the source registry's storage,
# and a parallel ($jobs at once) raw GET -> PUT of every distinct blob with curl into a
# fresh target.
run_bytes() {
  local round=$1
  rm -rf "$BENCH_TMP/cp-copy"
  mkdir -p "$BENCH_TMP/cp-copy"
  count_dst=""
  measure copy_cp "$round" - "" \
    xargs -a "$blob_dirs" cp -r --parents -t "$BENCH_TMP/cp-copy"
  verify check_copy_cp
  rm -rf "$BENCH_TMP/cp-copy"
  fresh_target "bytes-$round"
  measure copy_curl "$round" - "$target" \
    xargs -P "$jobs" -n 3 -a "$blob_list" sh -c \
    "exec \"$root/scripts/bench.d/blob-copy.sh\" \"$src\" \"$target\" \"\$0\" \"\$1\""
  verify check_blobs "$target" "$blob_list"
  registry_stop "bytes-$round"
}

# check_copy_cp: the cp copy holds every fixture blob, byte for byte in size.
check_copy_cp() {
  local want got
  want=$(awk '{ n += $3 } END { print n }' "$blob_list")
  got=$(find "$BENCH_TMP/cp-copy" -type f -name data -printf '%s\n' | awk '{ n += $1 } END { print n }')
  [[ $want == "$got" ]] || { echo "copied $got bytes of $want"; return 1; }
  echo "$got bytes in $(wc -l <"$blob_list") blobs"
}

# check_blobs HOST LIST: every blob of LIST ("repo digest size") is on HOST with its size.
check_blobs() {
  local repo digest size got n=0
  while read -r repo digest size; do
    got=$(curl -sfI "http://$1/v2/$repo/blobs/$digest" | tr -d '\r' |
      awk 'tolower($1) == "content-length:" { print $2 }')
    [[ $got == "$size" ]] || { echo "$repo@$digest: size ${got:-missing}, want $size"; return 1; }
    n=$((n + 1))
  done <"$2"
  echo "all $n blobs present"
}

# ---------------------------------------------------------------- scenarios run once

# check_only_heads: the last measurement sent the source and the target nothing but HEADs
# (and /v2/ pings): a no-op that costs no pull.
check_only_heads() {
  local counts
  counts=$(grep -E '^(src|dst)_not_head=' "$m_counts" | grep -v '=0$' | tr '\n' ' ')
  [[ -z $counts ]] || { echo "requests other than HEAD: $counts"; return 1; }
  echo "only HEADs ($(grep -E '^(src|dst)_head=' "$m_counts" | tr '\n' ' '| sed 's/ $//'))"
}

# check_noop_at_scale REPORT TARGET STYLE: a no-op of every scale tag, only HEADs.
check_noop_at_scale() {
  local run heads
  run=$(check_run "$1" 0 "$scale_count" "$2" "$3" "$scale_tsv") || { echo "$run"; return 1; }
  heads=$(check_only_heads) || { echo "$heads"; return 1; }
  echo "$run; $heads"
}

# "No-op at scale": REPOS x TAGS small images in their own source registry, mirrored once
# (measured too: cold), then again with the target complete (the no-op: ferry must stay
# under 2 s and send only HEADs). Both ferry transports and skopeo; the sequential loop
# is left out (a thousand pulls and pushes: minutes, and nothing it could skip).
run_scale() {
  local config state key
  registry_start scale-src || die "cannot start the scale source registry"
  scale_src=${REGISTRY_HOST[scale-src]}
  scale_tsv="$BENCH_TMP/scale.tsv"
  "$root/scripts/bench.d/synth.py" scale "$scale_src" "$BENCH_SCALE_REPOS" "$BENCH_SCALE_TAGS" \
    "$BENCH_RUN" "$scale_tsv" || die "cannot write the scale fixtures"
  scale_count=$(wc -l <"$scale_tsv")
  bench_write_configs "$scale_src" "$scale_tsv" scale
  count_src=scale-src

  fresh_target scale-registry
  config=$(ferry_config scale-registry "$target" "$BENCH_TMP/images-scale.yaml")
  state="$BENCH_TMP/state-scale-registry/state.json"
  ferry_sync ferry_registry_scale_cold 1 registry "$config" "$state" "$target"
  verify check_run "$m_report" "$scale_count" 0 "$target" flat "$scale_tsv"
  ferry_sync ferry_registry_scale_noop 1 registry "$config" "$state" "$target"
  verify check_noop_at_scale "$m_report" "$target" flat
  registry_stop scale-registry

  daemon_empty
  fresh_target scale-docker
  config=$(ferry_config scale-docker "$target" "$BENCH_TMP/images-scale.yaml")
  state="$BENCH_TMP/state-scale-docker/state.json"
  ferry_sync ferry_docker_scale_cold 1 docker "$config" "$state" "$target"
  verify check_run "$m_report" "$scale_count" 0 "$target" flat "$scale_tsv"
  ferry_sync ferry_docker_scale_noop 1 docker "$config" "$state" "$target"
  verify check_noop_at_scale "$m_report" "$target" flat
  registry_stop scale-docker
  daemon_empty

  fresh_target scale-skopeo
  for key in skopeo_scale_cold skopeo_scale_noop; do
    measure "$key" 1 - "$target" \
      skopeo sync --all --src yaml --dest docker --dest-tls-verify=false \
      "$BENCH_TMP/skopeo-scale.yaml" "$target/mirror"
    verify check_run - - - "$target" base "$scale_tsv"
  done
  registry_stop scale-skopeo
  registry_stop scale-src
  count_src=source
}

declare -ga wan_pids=()

# wan_target NAME: a fresh target registry behind the throttling proxy; sets target to
# the proxy's address (count_dst stays the registry's name).
wan_target() {
  local port_file="$BENCH_TMP/wan-$1.port" i
  fresh_target "$1"
  "$root/scripts/bench.d/wan_proxy.py" "$target" "$BENCH_WAN_RTT_MS" "$BENCH_WAN_RATE" \
    >"$port_file" 2>"$BENCH_TMP/logs/wan-$1.log" 9>&- &
  wan_pids+=("$!")
  for ((i = 0; i < 100; i++)); do
    [[ -s $port_file ]] && break
    sleep 0.05
  done
  [[ -s $port_file ]] || die "the WAN proxy did not start"
  target="127.0.0.1:$(head -n 1 "$port_file")"
}

wan_stop_all() {
  local pid
  for pid in "${wan_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  wan_pids=()
}

# "WAN": hop 1 runs on a US CI runner and pushes to Beijing. Every cold copy again, with
# the target behind a proxy adding $BENCH_WAN_RTT_MS ms of round trip and shaping the link
# to $BENCH_WAN_RATE bytes/s each way; the source stays local (the runner is near it).
run_wan() {
  local phases="$BENCH_TMP/logs/loop_wan.r1.phases" config key
  daemon_empty
  wan_target wan-loop
  measure loop_wan 1 "$phases" "$target" \
    bash "$root/scripts/bench.d/docker-loop.sh" "$src" "$target" "$tags_tsv" "$phases"
  verify check_run - - - "$target" flat
  registry_stop wan-loop

  daemon_empty
  wan_target wan-docker
  config=$(ferry_config wan-docker "$target")
  ferry_sync ferry_docker_wan 1 docker "$config" "$BENCH_TMP/state-wan-docker/state.json" "$target"
  verify check_run "$m_report" "$tag_count" 0 "$target" flat
  registry_stop wan-docker
  daemon_empty

  wan_target wan-registry
  config=$(ferry_config wan-registry "$target")
  ferry_sync ferry_registry_wan 1 registry "$config" "$BENCH_TMP/state-wan-registry/state.json" "$target"
  verify check_run "$m_report" "$tag_count" 0 "$target" flat
  registry_stop wan-registry

  wan_target wan-skopeo
  measure skopeo_wan 1 - "$target" \
    skopeo sync --all --src yaml --dest docker --dest-tls-verify=false \
    "$BENCH_TMP/skopeo.yaml" "$target/mirror"
  verify check_run - - - "$target" base
  registry_stop wan-skopeo
  wan_stop_all
}

# A single-layer image of $BENCH_BIG_MIB MiB through the registry transport (peak RSS,
# throughput), and the byte-copy limit for it: curl GET -> PUT of the same layer.
run_big() {
  local big_src config list="$BENCH_TMP/big-blobs.txt" tsv="$BENCH_TMP/big.tsv"
  registry_start big-src || die "cannot start the big source registry"
  big_src=${REGISTRY_HOST[big-src]}
  "$root/scripts/bench.d/synth.py" big "$big_src" bench/big:1 "$BENCH_BIG_MIB" \
    >"$BENCH_TMP/big.json" || die "cannot write the big image"
  printf 'single\tbench/big\t1\n' >"$tsv"
  echo "$big_src/bench/big:1:" >"$BENCH_TMP/images-big.yaml"
  "$root/scripts/bench.d/synth.py" blobs "$big_src" "$tsv" | sort -k3 -n | tail -n 1 >"$list"
  count_src=big-src

  fresh_target big-ferry
  config=$(ferry_config big-ferry "$target" "$BENCH_TMP/images-big.yaml")
  ferry_sync ferry_registry_big 1 registry "$config" "$BENCH_TMP/state-big/state.json" "$target"
  verify check_run "$m_report" 1 0 "$target" flat "$tsv"
  registry_stop big-ferry
  rm -rf "$BENCH_TMP/state-big"

  fresh_target big-curl
  measure copy_curl_big 1 - "$target" \
    xargs -n 3 -a "$list" sh -c \
    "exec \"$root/scripts/bench.d/blob-copy.sh\" \"$big_src\" \"$target\" \"\$0\" \"\$1\""
  verify check_blobs "$target" "$list"
  registry_stop big-curl
  registry_stop big-src
  count_src=source
}
