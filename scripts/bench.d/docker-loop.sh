#!/usr/bin/env bash
# The reference ferry is measured against: a plain sequential docker CLI loop.
#   docker-loop.sh SRC DST TAGS_TSV PHASES_FILE
# For every single-platform tag:  docker pull SRC/R:T; docker tag SRC/R:T DST/mirror/F:T;
#                                 docker push DST/mirror/F:T      (F = R with / -> _)
# For every multi-platform tag, per platform: docker pull --platform P SRC/R:T;
#   docker tag SRC/R:T DST/mirror/F:T-ARCH; docker push DST/mirror/F:T-ARCH; then
#   docker manifest create --insecure DST/mirror/F:T (the pushed ones) and
#   docker manifest push --insecure --purge DST/mirror/F:T.
# Writes the seconds spent in pull, tag, push and manifest commands to PHASES_FILE.
set -euo pipefail
export LC_ALL=C

src=$1 dst=$2 tags=$3 phases=$4
pull=0 tag=0 push=0 manifest=0

# timed VAR CMD...: runs CMD, adds its wall-clock seconds (µs integer) to VAR.
timed() {
  local var=$1 t0 t1
  shift
  t0=${EPOCHREALTIME/./}
  "$@"
  t1=${EPOCHREALTIME/./}
  printf -v "$var" '%d' $((${!var} + t1 - t0))
}

while IFS=$'\t' read -r kind repo t; do
  from="$src/$repo:$t"
  to="$dst/mirror/${repo//\//_}:$t"
  if [[ $kind == single ]]; then
    timed pull docker pull -q "$from"
    timed tag docker tag "$from" "$to"
    timed push docker push -q "$to"
  else
    parts=()
    for arch in amd64 arm64; do
      timed pull docker pull -q --platform "linux/$arch" "$from"
      timed tag docker tag "$from" "$to-$arch"
      timed push docker push -q "$to-$arch"
      parts+=("$to-$arch")
    done
    timed manifest docker manifest create --insecure "$to" "${parts[@]}"
    timed manifest docker manifest push --insecure --purge "$to"
  fi
done <"$tags"

printf 'pull=%d\ntag=%d\npush=%d\nmanifest=%d\n' "$pull" "$tag" "$push" "$manifest" >"$phases"
