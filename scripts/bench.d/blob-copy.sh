#!/usr/bin/env bash
# The byte-copy limit of scripts/bench: a raw GET -> PUT of one blob with curl, streamed
# (the GET's body is the PUT's chunked body; nothing lands on disk).
#   blob-copy.sh SRC DST REPO DIGEST     (REPO is also the repository written on DST)
set -euo pipefail
src=$1 dst=$2 repo=$3 digest=$4
location=$(curl -sSf -X POST -D - -o /dev/null "http://$dst/v2/$repo/blobs/uploads/" |
  tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
[[ $location == /* ]] && location="http://$dst$location"
[[ $location == *\?* ]] && sep='&' || sep='?'
curl -sSf "http://$src/v2/$repo/blobs/$digest" |
  curl -sSf -X PUT -H 'Content-Type: application/octet-stream' -T - -o /dev/null \
    "$location${sep}digest=$digest"
