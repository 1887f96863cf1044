# shellcheck shell=bash
# shellcheck disable=SC2154 # the variables named below come from scripts/bench
# Sourced by scripts/bench: the measured runs. Each group starts its own fresh target
# registry and records one row per measurement (key, round, µs, peak RSS KiB, exit code,
# check verdict, extra file, command) in $results for report.py.
#
# Needs from scripts/bench: BENCH_TMP, BENCH_RUN, root, ferry, jobs, src, tags_tsv,
# tag_count, results, check_py, note, die; sets failures.

failures=0

# measure KEY ROUND EXTRA TARGET CMD...: runs CMD once under wall clock and
# /usr/bin/time -f %M; output in $BENCH_TMP/logs/KEY.rROUND.log. EXTRA: a file render
# reads (ferry report, loop phases) or -.
measure() {
  local key=$1 round=$2 extra=$3 target=$4 log rss t0 t1 shown
  shift 4
  log="$BENCH_TMP/logs/$key.r$round.log"
  rss="$BENCH_TMP/logs/$key.r$round.rss"
  m_rc=0
  t0=${EPOCHREALTIME/./}
  timeout 900 /usr/bin/time -f %M -o "$rss" "$@" >"$log" 2>&1 </dev/null || m_rc=$?
  t1=${EPOCHREALTIME/./}
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
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m_key" "$m_round" "$m_us" "$m_rss" "$m_rc" \
    "$verdict" "$m_extra" "$m_cmd" >>"$results"
}

# check_run REPORT COPIED SKIPPED TARGET STYLE: ferry's report totals (unless REPORT is -)
# and every tag at TARGET (STYLE flat: mirror/bench_app1, base: mirror/app1).
check_run() {
  local totals=""
  if [[ $1 != - ]]; then
    totals=$("$root/$check_py" ferry "$1" "$2" "$3") || { echo "$totals"; return 1; }
    totals="$totals; "
  fi
  echo "$totals$("$root/$check_py" target "$4" "$tags_tsv" "$5")"
}

# ferry_config NAME TARGET: a config directory mirroring every fixture to TARGET/mirror.
ferry_config() {
  local dir="$BENCH_TMP/config-$1"
  mkdir -p "$dir"
  cp "$BENCH_TMP/images.yaml" "$dir/images.yaml"
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

# fresh_target NAME: starts a registry for one group; sets target.
fresh_target() {
  registry_start "$1" || die "cannot start a target registry"
  target=${REGISTRY_HOST[$1]}
}

# The plain sequential docker CLI loop, from an empty daemon to a fresh target.
run_loop() {
  local round=$1 phases="$BENCH_TMP/logs/loop.r$1.phases"
  daemon_empty
  fresh_target "loop-$round"
  measure loop "$round" "$phases" "$target" \
    bash "$root/scripts/bench.d/docker-loop.sh" "$src" "$target" "$tags_tsv" "$phases"
  verify check_run - - - "$target" flat
  registry_stop "loop-$round"
}

# ferry docker transport: cold (empty daemon), warm (the cold run's layers still in the
# daemon, fresh target and state), no-op (the warm run's target and state again).
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
  registry_stop "warm-$round"
}

# skopeo sync --all from the YAML source list: cold to a fresh target, then again.
run_skopeo() {
  local round=$1 key
  fresh_target "skopeo-$round"
  for key in skopeo_cold skopeo_noop; do
    measure "$key" "$round" - "$target" \
      skopeo sync --all --src yaml --dest docker --dest-tls-verify=false \
      "$BENCH_TMP/skopeo.yaml" "$target/mirror"
    verify check_run - - - "$target" base
  done
  registry_stop "skopeo-$round"
}

# ferry registry transport: cold (fresh target, fresh .ferry/blobs), then no-op.
run_ferry_registry() {
  local round=$1 config state
  fresh_target "registry-$round"
  config=$(ferry_config "registry-$round" "$target")
  state="$BENCH_TMP/state-registry-$round/state.json"
  ferry_sync ferry_registry_cold "$round" registry "$config" "$state" "$target"
  verify check_run "$m_report" "$tag_count" 0 "$target" flat
  ferry_sync ferry_registry_noop "$round" registry "$config" "$state" "$target"
  verify check_run "$m_report" 0 "$tag_count" "$target" flat
  registry_stop "registry-$round"
}
