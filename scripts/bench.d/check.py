#!/usr/bin/env python3
"""Checks of scripts/bench against the registries and ferry's reports.

  check.py fixture-bytes HOST TAGS_TSV        JSON: distinct blobs (count, bytes) behind the tags
  check.py target HOST TAGS_TSV STYLE         every tag arrived (STYLE flat: mirror/bench_app1,
                                              base: mirror/app1); lists keep both platforms
  check.py ferry REPORT COPIED SKIPPED        ferry's --report totals are as expected
  check.py probe HOST INSTANCE                exit 0 when HOST answers /v2/ with that
                                              X-Bench-Instance header (a registry we started)

Standard library only; talks plain HTTP to loopback registries. Measures nothing.
"""

import json
import sys
import urllib.error
import urllib.request

ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
])
LISTS = ("application/vnd.docker.distribution.manifest.list.v2+json",
         "application/vnd.oci.image.index.v1+json")

def manifest(host, repo, ref):
    request = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{ref}",
                                     headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.headers.get("Content-Type", ""), json.load(answer)


def read_tags(path):
    with open(path, encoding="utf-8") as tsv:
        return [line.rstrip("\n").split("\t") for line in tsv if line.strip()]


def fixture_bytes(host, tags_tsv):
    blobs = {}
    manifests = 0

    def walk(repo, ref):
        nonlocal manifests
        media_type, doc = manifest(host, repo, ref)
        manifests += 1
        if media_type in LISTS:
            for child in doc["manifests"]:
                walk(repo, child["digest"])
            return
        for blob in [doc["config"], *doc["layers"]]:
            blobs[blob["digest"]] = blob["size"]

    for _kind, repo, tag in read_tags(tags_tsv):
        walk(repo, tag)
    print(json.dumps({"blob_bytes": sum(blobs.values()), "blob_count": len(blobs),
                      "manifests": manifests}))


def check_target(host, tags_tsv, style):
    problems = []
    tags = read_tags(tags_tsv)
    for kind, repo, tag in tags:
        name = repo.replace("/", "_") if style == "flat" else repo.rsplit("/", 1)[-1]
        target = f"mirror/{name}"
        try:
            media_type, doc = manifest(host, target, tag)
        except urllib.error.HTTPError as error:
            problems.append(f"{target}:{tag}: HTTP {error.code}")
            continue
        if kind == "multi":
            platforms = sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                               for m in doc.get("manifests", []))
            if media_type not in LISTS or platforms != ["linux/amd64", "linux/arm64"]:
                problems.append(f"{target}:{tag}: {media_type} with {platforms}")
        elif media_type in LISTS:
            problems.append(f"{target}:{tag}: a list, expected one image")
    if problems:
        print("; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
        sys.exit(1)
    print(f"all {len(tags)} tags present")


def check_ferry(report_path, copied, skipped):
    with open(report_path, encoding="utf-8") as file:
        totals = json.load(file)["totals"]
    want = {"copied": int(copied), "skipped": int(skipped), "failed": 0}
    got = {k: totals.get(k) for k in want}
    if got != want:
        print(f"report totals {got}, expected {want}")
        sys.exit(1)
    print(f"copied {got['copied']}, skipped {got['skipped']}")


def probe(host, instance):
    try:
        with urllib.request.urlopen(f"http://{host}/v2/", timeout=2) as answer:
            return 0 if answer.headers.get("X-Bench-Instance") == instance else 1
    except (OSError, urllib.error.URLError):
        return 1


def main(argv):
    commands = {"fixture-bytes": (fixture_bytes, 2), "target": (check_target, 3),
                "ferry": (check_ferry, 3), "probe": (probe, 2)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    function, _ = commands[argv[1]]
    return function(*argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
