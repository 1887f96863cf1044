#!/usr/bin/env python3
"""Synthetic images for scripts/bench, written straight to a loopback registry over HTTP.

  synth.py scale HOST REPOS TAGS LABEL_RUN TSV   REPOS x TAGS small distinct images
                                                 (one shared busybox-free layer, one config
                                                 each), tags listed in TSV (kind, repo, tag)
  synth.py big HOST REPO:TAG MIB                 one image with a single random layer of
                                                 MIB MiB (streamed from /dev/urandom)
  synth.py blobs HOST TAGS_TSV                   "repo digest size" of every distinct blob
                                                 behind the tags (for the byte-copy rows)

The scale images are valid (a gzip tar layer, a config naming its diff id, labels
ferry.bench=1 and ferry.bench.run=LABEL_RUN) so the daemon can pull and push them.
Standard library only; measures nothing.
"""

import gzip
import hashlib
import io
import json
import sys
import tarfile
import urllib.request

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=600) as answer:
        return answer.headers, answer.read()


def push_blob(host, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    headers, _ = request("POST", f"http://{host}/v2/{repo}/blobs/uploads/")
    location = headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    request("PUT", f"{location}{sep}digest={digest}", data,
            {"Content-Type": "application/octet-stream"})
    return digest


def push_manifest(host, repo, tag, config, layers):
    doc = {"schemaVersion": 2, "mediaType": MANIFEST,
           "config": {"mediaType": CONFIG, "size": config[1], "digest": config[0]},
           "layers": [{"mediaType": LAYER, "size": size, "digest": digest}
                      for digest, size in layers]}
    body = json.dumps(doc).encode()
    request("PUT", f"http://{host}/v2/{repo}/manifests/{tag}", body,
            {"Content-Type": MANIFEST})


def scale(host, repos, tags, run, tsv):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("data/scale.txt")
        payload = b"ferry bench no-op at scale\n"
        info.size, info.mtime = len(payload), 1700000000
        tar.addfile(info, io.BytesIO(payload))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = gzip.compress(raw.getvalue(), mtime=0)
    with open(tsv, "w", encoding="utf-8") as out:
        for r in range(1, int(repos) + 1):
            repo = f"scale/app{r}"
            layer_digest = push_blob(host, repo, layer)
            for t in range(1, int(tags) + 1):
                tag = f"1.{t}"
                config = json.dumps({
                    "architecture": "amd64", "os": "linux",
                    "config": {"Labels": {"ferry.bench": "1", "ferry.bench.run": run,
                                          "ferry.bench.scale": f"{repo}:{tag}"}},
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                    "history": [{"created_by": "scripts/bench.d/synth.py"}],
                }, sort_keys=True).encode()
                config_digest = push_blob(host, repo, config)
                push_manifest(host, repo, tag, (config_digest, len(config)),
                              [(layer_digest, len(layer))])
                out.write(f"single\t{repo}\t{tag}\n")


def big(host, reference, mib):
    repo, tag = reference.rsplit(":", 1)
    headers, _ = request("POST", f"http://{host}/v2/{repo}/blobs/uploads/")
    location = headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    digest, size = hashlib.sha256(), 0
    chunk = 8 * 1048576
    with open("/dev/urandom", "rb") as random:
        for _ in range(int(mib) * 1048576 // chunk):
            data = random.read(chunk)
            digest.update(data)
            headers, _ = request("PATCH", location, data, {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{size}-{size + len(data) - 1}"})
            location = headers["Location"]
            if location.startswith("/"):
                location = f"http://{host}{location}"
            size += len(data)
    layer_digest = "sha256:" + digest.hexdigest()
    sep = "&" if "?" in location else "?"
    request("PUT", f"{location}{sep}digest={layer_digest}", b"")
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
    config_digest = push_blob(host, repo, config)
    push_manifest(host, repo, tag, (config_digest, len(config)), [(layer_digest, size)])
    print(json.dumps({"layer": layer_digest, "bytes": size}))


ACCEPT = ", ".join(["application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.oci.image.index.v1+json", MANIFEST,
                    "application/vnd.oci.image.manifest.v1+json"])


def blobs(host, tags_tsv):
    seen = {}

    def walk(repo, ref):
        headers, body = request("GET", f"http://{host}/v2/{repo}/manifests/{ref}",
                                headers={"Accept": ACCEPT})
        doc = json.loads(body)
        if "manifests" in doc:
            for child in doc["manifests"]:
                walk(repo, child["digest"])
            return
        for blob in [doc["config"], *doc["layers"]]:
            seen.setdefault(blob["digest"], (repo, blob["size"]))

    with open(tags_tsv, encoding="utf-8") as tsv:
        for line in tsv:
            if line.strip():
                _kind, repo, tag = line.rstrip("\n").split("\t")
                walk(repo, tag)
    for digest, (repo, size) in seen.items():
        print(repo, digest, size)


def main(argv):
    commands = {"scale": (scale, 5), "big": (big, 3), "blobs": (blobs, 2)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    function, _ = commands[argv[1]]
    function(*argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
