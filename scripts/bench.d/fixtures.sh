# shellcheck shell=bash
# Sourced by scripts/bench: builds the fixture images from FROM-scratch contexts (busybox
# plus incompressible random layers), pushes them to the source registry, and removes
# them from the daemon again. Every image it builds carries the label
# ferry.bench.run=$BENCH_RUN, and so does every image pulled from the source later.
#
# Layout (sizes in MiB, random data, so compressed ≈ raw):
#   base            busybox + 20            shared by every amd64 image
#   bench/appR      family layer 5..10      per repository, R = 1..BENCH_REPOS
#     :1.T          unique layer 1.2..2.0   per tag, T = 1..BENCH_TAGS
#   arm64 base      busybox + 12            shared by the arm64 variants
#   bench/multiM:2.U  manifest list: linux/amd64 (base + 3) and linux/arm64 (arm64 base + 3)
# Plus one more tag per repository (1.(TAGS+1), 2.(MULTI_TAGS)) listed apart in
# tags-inc.tsv: the "incremental" scenario's new tags, sharing base and family layers.

BENCH_REPOS=${BENCH_REPOS:-8}
BENCH_TAGS=${BENCH_TAGS:-5}
BENCH_MULTI_REPOS=${BENCH_MULTI_REPOS:-2}
BENCH_MULTI_TAGS=${BENCH_MULTI_TAGS:-2}

# bench_random FILE KIB: KIB KiB from /dev/urandom.
bench_random() {
  head -c "$(($2 * 1024))" /dev/urandom >"$1"
}

# bench_build DIR TAG [docker build flags...]: builds DIR/Dockerfile; quiet unless it fails.
bench_build() {
  local dir=$1 tag=$2
  shift 2
  if ! docker build --no-cache -q "$@" -t "$tag" "$dir" >"$dir.log" 2>&1; then
    cat "$dir.log" >&2
    echo "bench: docker build of $tag failed" >&2
    return 1
  fi
  rm -rf "$dir" "$dir.log"
}

# bench_context NAME: a fresh empty build context directory.
bench_context() {
  local dir="$BENCH_TMP/ctx/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$dir"
}

# bench_fixtures_build SRC: builds and pushes every fixture to registry host SRC; writes
# $BENCH_TMP/tags.tsv (kind, repository, tag), tags-inc.tsv (the new tags of the
# incremental scenario) and tags-all.tsv (both, repository by repository). The caller's `set -e` does not reach in
# here (it is called in a `||` list): every step checks for itself.
bench_fixtures_build() {
  local src=$1 ctx r t m u arch repo tag refs=() lists=()
  local tags_file="$BENCH_TMP/tags.tsv" inc_file="$BENCH_TMP/tags-inc.tsv" out label="LABEL ferry.bench=1 ferry.bench.run=$BENCH_RUN"
  local base="ferry-bench/base:$BENCH_RUN" arm_rootfs="$BENCH_TMP/arm64-rootfs"
  : >"$tags_file" || return 1
  : >"$inc_file" || return 1

  ctx=$(bench_context base) || return 1
  cp /bin/busybox "$ctx/busybox" || return 1
  bench_random "$ctx/base.bin" $((20 * 1024)) || return 1
  printf '%s\n' 'FROM scratch' "$label" 'COPY busybox /bin/busybox' \
    'COPY base.bin /data/base.bin' 'CMD ["/bin/busybox", "sh"]' >"$ctx/Dockerfile"
  bench_build "$ctx" "$base" || return 1

  # The arm64 variants start from scratch (the legacy builder will not use a local arm64
  # image as FROM without pulling, and mislabels a LABEL-first arm64 chain), so their
  # shared base is a rootfs tree with fixed mtimes: identical bytes, identical layer.
  mkdir -p "$arm_rootfs/bin" "$arm_rootfs/data" || return 1
  cp /bin/busybox "$arm_rootfs/bin/busybox" || return 1
  bench_random "$arm_rootfs/data/base.bin" $((12 * 1024)) || return 1

  for ((r = 1; r <= BENCH_REPOS; r++)); do
    repo="bench/app$r"
    ctx=$(bench_context "family-$r") || return 1
    bench_random "$ctx/family.bin" $(((5 + (r - 1) % 6) * 1024)) || return 1
    printf '%s\n' "FROM $base" 'COPY family.bin /data/family.bin' >"$ctx/Dockerfile"
    bench_build "$ctx" "ferry-bench/family$r:$BENCH_RUN" || return 1
    for ((t = 1; t <= BENCH_TAGS + 1; t++)); do
      tag="1.$t"
      out=$tags_file
      ((t <= BENCH_TAGS)) || out=$inc_file
      ctx=$(bench_context "app-$r-$t") || return 1
      bench_random "$ctx/unique.bin" $((1024 + t * 205)) || return 1
      printf '%s\n' "FROM ferry-bench/family$r:$BENCH_RUN" 'COPY unique.bin /data/unique.bin' \
        >"$ctx/Dockerfile"
      bench_build "$ctx" "$src/$repo:$tag" || return 1
      refs+=("$src/$repo:$tag")
      printf 'single\t%s\t%s\n' "$repo" "$tag" >>"$out"
    done
  done

  for ((m = 1; m <= BENCH_MULTI_REPOS; m++)); do
    repo="bench/multi$m"
    for ((u = 0; u <= BENCH_MULTI_TAGS; u++)); do
      tag="2.$u"
      out=$tags_file
      ((u < BENCH_MULTI_TAGS)) || out=$inc_file
      for arch in amd64 arm64; do
        ctx=$(bench_context "multi-$m-$u-$arch") || return 1
        bench_random "$ctx/variant.bin" $((3 * 1024)) || return 1
        if [[ $arch == amd64 ]]; then
          printf '%s\n' "FROM $base" 'COPY variant.bin /data/variant.bin' >"$ctx/Dockerfile"
        else
          cp -al "$arm_rootfs" "$ctx/rootfs" || return 1
          find "$ctx/rootfs" -exec touch -h -d @1700000000 {} + || return 1
          printf '%s\n' 'FROM scratch' 'COPY rootfs/ /' 'COPY variant.bin /data/variant.bin' \
            'CMD ["/bin/busybox", "sh"]' "$label" >"$ctx/Dockerfile"
        fi
        bench_build "$ctx" "$src/$repo:$tag-$arch" --platform "linux/$arch" || return 1
        refs+=("$src/$repo:$tag-$arch")
      done
      lists+=("$src/$repo:$tag")
      printf 'multi\t%s\t%s\n' "$repo" "$tag" >>"$out"
    done
  done

  # Setup is not measured: push four at a time.
  if ! printf '%s\n' "${refs[@]}" | xargs -P 4 -n 1 docker push -q >"$BENCH_TMP/push.log" 2>&1; then
    cat "$BENCH_TMP/push.log" >&2
    echo "bench: pushing the fixtures failed" >&2
    return 1
  fi
  local list
  for list in "${lists[@]}"; do
    if ! { docker manifest create --insecure "$list" "$list-amd64" "$list-arm64" &&
      docker manifest push --insecure --purge "$list"; } >>"$BENCH_TMP/push.log" 2>&1; then
      cat "$BENCH_TMP/push.log" >&2
      echo "bench: manifest list $list failed" >&2
      return 1
    fi
  done
  rm -rf "$BENCH_TMP/ctx" "$arm_rootfs"
  sort -s -t $'\t' -k2,2 "$tags_file" "$inc_file" >"$BENCH_TMP/tags-all.tsv"
}

# bench_write_configs SRC TAGS_TSV [NAME]: images[-NAME].yaml keys (HOST/REPO:t1,t2) and
# the skopeo sync YAML skopeo[-NAME].yaml for the tags of TAGS_TSV.
bench_write_configs() {
  local src=$1 tsv=$2 suffix=${3:+-$3} repo tags
  local images="$BENCH_TMP/images$suffix.yaml" skopeo="$BENCH_TMP/skopeo$suffix.yaml"
  : >"$images"
  {
    echo "$src:"
    echo "  tls-verify: false"
    echo "  images:"
  } >"$skopeo"
  while read -r repo; do
    tags=$(awk -F '\t' -v r="$repo" '$2 == r { print $3 }' "$tsv" | paste -sd, -)
    echo "$src/$repo:$tags:" >>"$images"
    echo "    $repo: [${tags//,/, }]" >>"$skopeo"
  done < <(cut -f2 "$tsv" | uniq)
}

# bench_images_remove LABEL_FILTER: removes every daemon image with that label, children
# before parents (a parent with children cannot be removed, even forced).
bench_images_remove() {
  local filter=$1 ids pass
  for ((pass = 0; pass < 6; pass++)); do
    ids=$(docker image ls -aq --filter "label=$filter" | sort -u)
    [[ -n $ids ]] || return 0
    # shellcheck disable=SC2086 # one id per word
    docker rmi -f $ids >/dev/null 2>&1 || true
  done
  ids=$(docker image ls -aq --filter "label=$filter" | sort -u)
  [[ -z $ids ]] || {
    echo "bench: images with label $filter remain: $(echo "$ids" | tr '\n' ' ')" >&2
    return 1
  }
}
