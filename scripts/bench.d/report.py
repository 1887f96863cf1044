#!/usr/bin/env python3
"""The result table of scripts/bench.

  report.py RESULTS_TSV FACTS_ENV OUT_DIR [README]

RESULTS_TSV: one row per measurement (key, round, µs, peak RSS KiB, exit code, check
verdict, extra file, command). FACTS_ENV: KEY=VALUE lines. Writes OUT_DIR/latest.md and
OUT_DIR/latest.json, prints the table, and replaces the block between
<!-- bench:begin --> and <!-- bench:end --> in README when it has one. Exit 1 when a
measurement failed. Standard library only; measures nothing.
"""

import json
import statistics
import sys

# (key, label, reference row its ratio is taken against)
ROWS = [
    ("loop", "docker pull/tag/push loop (sequential), cold", None),
    ("push_floor", "docker push of the loop's images, --jobs at once (the daemon's "
                   "compress + upload floor)", "loop"),
    ("ferry_docker_cold", "ferry docker, cold (empty daemon, fresh target)", "loop"),
    ("ferry_docker_warm", "ferry docker, warm (layers in daemon, fresh target)", "loop"),
    ("ferry_docker_noop", "ferry docker, no-op (same target and state)", "loop"),
    ("loop_inc", "loop, incremental (only the new tags, empty daemon)", None),
    ("ferry_docker_inc", "ferry docker, incremental (new tags in the config, empty daemon)", "loop_inc"),
    ("skopeo_cold", "skopeo sync --all, cold (fresh target)", None),
    ("skopeo_noop", "skopeo sync --all, no-op", None),
    ("skopeo_inc", "skopeo sync --all, incremental", None),
    ("ferry_registry_cold", "ferry registry transport, cold (fresh target, blob cache)", "skopeo_cold"),
    ("ferry_registry_noop", "ferry registry transport, no-op", "skopeo_noop"),
    ("ferry_registry_inc", "ferry registry transport, incremental", "skopeo_inc"),
    ("copy_cp", "byte-copy limit: cp -r of the source's blob files", None),
    ("copy_curl", "byte-copy limit: curl GET->PUT of every blob, parallel", None),
    ("loop_wan", "WAN: loop, cold", None),
    ("ferry_docker_wan", "WAN: ferry docker, cold", "loop_wan"),
    ("skopeo_wan", "WAN: skopeo sync --all, cold", None),
    ("ferry_registry_wan", "WAN: ferry registry transport, cold", "skopeo_wan"),
    ("ferry_registry_scale_cold", "at scale: ferry registry transport, cold", "skopeo_scale_cold"),
    ("ferry_registry_scale_noop", "at scale: ferry registry transport, no-op", "skopeo_scale_noop"),
    ("ferry_docker_scale_cold", "at scale: ferry docker, cold", None),
    ("ferry_docker_scale_noop", "at scale: ferry docker, no-op", "skopeo_scale_noop"),
    ("skopeo_scale_cold", "at scale: skopeo sync --all, cold", None),
    ("skopeo_scale_noop", "at scale: skopeo sync --all, no-op", None),
    ("ferry_registry_big", "1 GiB layer: ferry registry transport", "copy_curl_big"),
    ("copy_curl_big", "1 GiB layer: curl GET->PUT (byte-copy limit)", None),
]
LABELS = {key: label for key, label, _ in ROWS}
REFERENCE = {key: ref for key, _, ref in ROWS}
# (name, row, reference row, limit): row / reference <= limit
RATIO_TARGETS = [
    ("docker transport cold ≤ 0.5× the loop", "ferry_docker_cold", "loop", 0.5),
    ("docker transport warm ≤ 0.3× the loop", "ferry_docker_warm", "loop", 0.3),
    ("docker transport WAN ≤ 0.5× the loop", "ferry_docker_wan", "loop_wan", 0.5),
    ("registry transport cold ≤ 0.5× skopeo sync --all", "ferry_registry_cold", "skopeo_cold", 0.5),
    ("registry transport cold within 2× the byte-copy limit (curl)", "ferry_registry_cold",
     "copy_curl", 2.0),
    ("1 GiB layer: throughput ≥ 80% of curl GET->PUT (time ≤ 1.25×)", "ferry_registry_big",
     "copy_curl_big", 1.25),
]
NOOP_TARGETS = [("ferry_registry_scale_noop", "registry transport no-op at scale < 2 s, only HEADs"),
                ("ferry_docker_scale_noop", "docker transport no-op at scale < 2 s, only HEADs")]
NOOP_LIMIT = 2.0
RSS_LIMIT_MIB = 100
README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"


def load_facts(path):
    """KEY=VALUE lines written by scripts/bench, grouped for the JSON document."""
    with open(path, encoding="utf-8") as file:
        env = dict(line.rstrip("\n").split("=", 1) for line in file if "=" in line)
    with open(env["fixture_json"], encoding="utf-8") as file:
        blobs = json.load(file)
    return {
        "date": env["date"],
        "machine": {k: env.get(k) for k in ("mem_total", "kernel", "loadavg_at_start",
                                              "loadavg_at_end", "dockerd", "docker_cli",
                                              "registry", "skopeo")}
        | {"nproc": int(env["nproc"])},
        "ferry": {"commit": env["commit"], "dirty": env["dirty"] == "1",
                  "jobs": int(env["jobs"]), "binary": "target/release/ferry"},
        "rounds": int(env["rounds"]),
        "fixtures": {"tags": int(env["tags"]), "single_tags": int(env["single_tags"]),
                     "multi_tags": int(env["multi_tags"]), "new_tags": int(env["inc_tags"]),
                     "repositories": int(env["repositories"]), **blobs},
        "scenarios": {"scale": env.get("scale"), "wan": env.get("wan"),
                      "big_mib": int(env.get("big_mib", 0)),
                      "skipped": [k for k in ("scale", "wan", "big") if env.get(f"skipped_{k}")]},
        "setup_seconds": int(env["setup_seconds"]),
    }


def read_extra(key, path):
    if path == "-":
        return {}
    with open(path, encoding="utf-8") as file:
        if key.startswith("loop"):
            phases = dict(line.strip().split("=") for line in file if "=" in line)
            return {"phases_seconds": {k: round(int(v) / 1e6, 2) for k, v in phases.items()}}
        report = json.load(file)
    return {"ferry_report": {"elapsed_seconds": round(report["elapsed_seconds"], 2),
                             "totals": report["totals"]},
            "breakdown": breakdown(report)}


def union(spans):
    """Seconds covered by at least one of the (from, to) spans."""
    total, end = 0.0, None
    for start, stop in sorted(spans):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


PHASES = ("download", "extract", "push")


def breakdown(report):
    """Where a ferry run's wall time went, from the per-job phase spans of its report:
    seconds during which at least one job was downloading, extracting, pushing; `other` is
    the rest of the run (decide, ferry's own registry calls, tag, manifest lists)."""
    spans = {p: [] for p in PHASES}
    for job in report.get("jobs", []):
        for phase in PHASES:
            span = job.get("phases", {}).get(phase)
            if span:
                spans[phase].append((span["from"], span["to"]))
    out = {p: round(union(spans[p]), 2) for p in PHASES}
    busy = union([s for p in PHASES for s in spans[p]])
    out["other"] = round(max(report["elapsed_seconds"] - busy, 0.0), 2)
    return out


def read_counts(path):
    """Request counts of one run (src_*, dst_*), from the registries' access logs."""
    try:
        with open(path, encoding="utf-8") as file:
            return {k: int(v) for k, v in (line.strip().split("=") for line in file if "=" in line)}
    except FileNotFoundError:
        return {}


def load_results(path):
    """Rows grouped by key: every round, and the median over the rounds."""
    rows = {}
    with open(path, encoding="utf-8") as tsv:
        for line in tsv:
            key, rnd, micros, rss, rc, verified, extra, counts, command = \
                line.rstrip("\n").split("\t")
            run = {"round": int(rnd), "seconds": round(int(micros) / 1e6, 3),
                   "exit_code": int(rc), "verified": verified,
                   "peak_rss_kib": int(rss) if rss.isdigit() else None,
                   "requests": read_counts(counts), **read_extra(key, extra)}
            run["ok"] = run["exit_code"] == 0 and verified.startswith("ok")
            row = rows.setdefault(key, {"key": key, "label": LABELS[key],
                                        "command": command, "rounds": []})
            row["rounds"].append(run)
    for row in rows.values():
        runs = row["rounds"]
        row["ok"] = all(r["ok"] for r in runs)
        times = [r["seconds"] for r in runs]
        row["seconds"] = round(statistics.median(times), 2) if row["ok"] else None
        row["min"], row["max"] = round(min(times), 2), round(max(times), 2)
        rss = [r["peak_rss_kib"] for r in runs if r["peak_rss_kib"]]
        row["peak_rss_kib"] = max(rss) if rss and not row["key"].startswith("loop") else None
        row["requests"] = runs[0]["requests"]
    return rows


def per_round(rows, key):
    return {r["round"]: r["seconds"] for r in rows[key]["rounds"]} if key in rows else {}


def ok_seconds(rows, key):
    row = rows.get(key)
    return row["seconds"] if row and row["ok"] else None


def targets(rows, fixtures):
    out = []
    for name, key, ref, limit in RATIO_TARGETS:
        mine, base = ok_seconds(rows, key), ok_seconds(rows, ref)
        if not (mine and base):
            out.append({"target": name, "limit": limit, "measured": None, "met": False,
                        "shown": "not measured"})
            continue
        ratio = mine / base
        bases = per_round(rows, ref)
        paired = [round(s / bases[n], 3) for n, s in per_round(rows, key).items() if n in bases]
        hits = sum(p <= limit for p in paired)
        rounds = f" (per round: {', '.join(f'{p:.3f}' for p in paired)}; met in {hits}/{len(paired)})" \
            if len(paired) > 1 else ""
        out.append({"target": name, "limit": limit, "measured": round(ratio, 3),
                    "per_round": paired, "met": ratio <= limit,
                    "shown": f"{ratio:.3f}× ({mine:.2f} s vs {base:.2f} s){rounds}"})
    for key, name in NOOP_TARGETS:
        row = rows.get(key)
        if not (row and row["ok"]):
            out.append({"target": name, "limit": NOOP_LIMIT, "measured": None, "met": False,
                        "shown": "not measured"})
            continue
        req = row["requests"]
        heads = req.get("src_head", 0) + req.get("dst_head", 0)
        others = req.get("src_not_head", 0) + req.get("dst_not_head", 0)
        out.append({"target": name, "limit": NOOP_LIMIT, "measured": row["seconds"],
                    "met": row["seconds"] < NOOP_LIMIT and others == 0,
                    "shown": f"{row['seconds']:.2f} s, {heads} HEADs, {others} other requests"})
    row = rows.get("ferry_registry_big")
    name = f"1 GiB layer: peak RSS < {RSS_LIMIT_MIB} MiB"
    if row and row["ok"] and row["peak_rss_kib"]:
        mib_used = row["peak_rss_kib"] / 1024
        out.append({"target": name, "limit": RSS_LIMIT_MIB, "measured": round(mib_used, 1),
                    "met": mib_used < RSS_LIMIT_MIB, "shown": f"{mib_used:.1f} MiB"})
    else:
        out.append({"target": name, "limit": RSS_LIMIT_MIB, "measured": None, "met": False,
                    "shown": "not measured"})
    want = fixtures["manifests"]
    for key in ("ferry_docker_cold", "ferry_registry_cold", "ferry_docker_noop",
                "ferry_registry_noop"):
        row = rows.get(key)
        expected = 0 if key.endswith("noop") else want
        name = (f"`{key}`: source manifest GETs (pulls) = {expected}"
                + (" (1 per platform image + 1 per index)" if expected else ""))
        if not (row and row["ok"] and row["requests"]):
            out.append({"target": name, "limit": expected, "measured": None, "met": False,
                        "shown": "not measured"})
            continue
        got = row["requests"].get("src_manifest_get", 0)
        out.append({"target": name, "limit": expected, "measured": got,
                    "met": got <= expected, "shown": str(got)})
    return out


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def table(rows, rounds):
    lines = [f"| measurement | seconds (median of {rounds}) | min–max | × reference | peak RSS "
             "| source manifest GETs | target blob PUTs / mounts | requests other than HEAD "
             "(source / target) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, label, ref in ROWS:
        row = rows.get(key)
        if row is None:
            continue
        if not row["ok"]:
            bad = next(r for r in row["rounds"] if not r["ok"])
            why = f"exit {bad['exit_code']}" if bad["exit_code"] else bad["verified"]
            lines.append(f"| {label} | FAILED in round {bad['round']} ({why}) | – | – | – | – | – | – |")
            continue
        base = ok_seconds(rows, ref) if ref else None
        ratio = f"{row['seconds'] / base:.2f} × `{ref}`" if base else "–"
        rss = mib(row["peak_rss_kib"] * 1024) if row["peak_rss_kib"] else "–"
        req = row["requests"]
        if req:
            pulls = str(req.get("src_manifest_get", 0))
            puts = f"{req.get('dst_blob_put', 0)} / {req.get('dst_mount', 0)}" \
                if "dst_requests" in req else "–"
            others = f"{req.get('src_not_head', 0)} / {req.get('dst_not_head', '–')}"
        else:
            pulls = puts = others = "–"
        lines.append(f"| {label} | {row['seconds']:.2f} | {row['min']:.2f}–{row['max']:.2f} "
                     f"| {ratio} | {rss} | {pulls} | {puts} | {others} |")
    return lines


def details(rows):
    lines = []
    for key in ("loop", "loop_inc", "loop_wan"):
        loop = rows.get(key)
        if loop and all("phases_seconds" in r for r in loop["rounds"]):
            phases = {p: statistics.median(r["phases_seconds"][p] for r in loop["rounds"])
                      for p in ("pull", "tag", "push", "manifest")}
            lines.append(f"`{key}` split (medians): pull {phases['pull']:.2f} s, tag "
                         f"{phases['tag']:.2f} s, push {phases['push']:.2f} s, manifest lists "
                         f"{phases['manifest']:.2f} s.")
    floor, loop_s = ok_seconds(rows, "push_floor"), ok_seconds(rows, "loop")
    warm, cold = ok_seconds(rows, "ferry_docker_warm"), ok_seconds(rows, "ferry_docker_cold")
    if floor and loop_s:
        lines.append(f"The daemon's floor: `docker push` of the same images, --jobs at once, from "
                     f"a daemon that has them takes {floor:.2f} s = {floor / loop_s:.2f}× the loop; "
                     + (f"ferry docker warm is {warm / floor:.2f}× that floor, " if warm else "")
                     + (f"cold {cold / floor:.2f}× it (cold adds the pull: download and extract)."
                        if cold else ""))
    for key, _, _ in ROWS:
        runs = [r for r in rows.get(key, {}).get("rounds", []) if "ferry_report" in r]
        if runs:
            own = statistics.median(r["ferry_report"]["elapsed_seconds"] for r in runs)
            t = runs[0]["ferry_report"]["totals"]
            split = {p: statistics.median(r["breakdown"][p] for r in runs)
                     for p in (*PHASES, "other")}
            lines.append(f"`{key}`: ferry's own clock {own:.2f} s (median); copied {t['copied']}, "
                         f"skipped {t['skipped']}, failed {t['failed']}, {mib(t['bytes'])}; "
                         f"wall seconds with a layer downloading {split['download']:.2f}, "
                         f"extracting {split['extract']:.2f}, pushing (compress + upload) "
                         f"{split['push']:.2f}, none of these (decide, ferry's registry calls, "
                         f"tag, lists) {split['other']:.2f}.")
    return lines


def split_of(rows, key):
    """Median phase seconds of a ferry row, or None."""
    runs = [r for r in rows.get(key, {}).get("rounds", []) if "breakdown" in r]
    if not runs or not rows[key]["ok"]:
        return None
    return {p: statistics.median(r["breakdown"][p] for r in runs) for p in (*PHASES, "other")}


def explain(goals, rows, fixtures):
    """One line per missed target: the figures of this run that explain it."""
    lines = []
    sec = lambda key: ok_seconds(rows, key)  # noqa: E731
    floor, loop = sec("push_floor"), sec("loop")
    for goal in goals:
        if goal["met"] or goal["measured"] is None:
            continue
        name = goal["target"]
        if name.startswith("docker transport warm") and floor and loop:
            split = split_of(rows, "ferry_docker_warm") or {}
            lines.append(f"{name}: the daemon's own `docker push` of the same images, "
                         f"--jobs at once, already takes {floor:.2f} s = {floor / loop:.2f}× the "
                         f"loop (it gzip-compresses every layer on the CPU); warm ferry spends "
                         f"{split.get('push', 0):.2f} s of {sec('ferry_docker_warm'):.2f} s "
                         "pushing"
                         + (". The target lies below the daemon's own floor on this machine."
                            if floor / loop > 0.3 else "."))
        elif name.startswith("docker transport cold") and floor and loop:
            split = split_of(rows, "ferry_docker_cold") or {}
            lines.append(f"{name}: cold = the push floor ({floor:.2f} s) plus the pull; wall "
                         f"seconds downloading {split.get('download', 0):.2f}, extracting "
                         f"{split.get('extract', 0):.2f} (the daemon unpacks every layer it "
                         f"pulls), pushing {split.get('push', 0):.2f}, other "
                         f"{split.get('other', 0):.2f}.")
        elif name.startswith("docker transport WAN"):
            split = split_of(rows, "ferry_docker_wan") or {}
            lines.append(f"{name}: pushing {split.get('push', 0):.2f} s of "
                         f"{sec('ferry_docker_wan') or 0:.2f} s through the throttled link.")
        elif name.startswith("registry transport cold ≤ 0.5× skopeo"):
            split = split_of(rows, "ferry_registry_cold") or {}
            curl = sec("copy_curl")
            lines.append(f"{name}: wall seconds downloading {split.get('download', 0):.2f}, "
                         f"uploading {split.get('push', 0):.2f}, other "
                         f"{split.get('other', 0):.2f}; the raw curl GET->PUT of the same "
                         f"blobs took {curl or 0:.2f} s, so ferry is at "
                         f"{(sec('ferry_registry_cold') or 0) / curl if curl else 0:.2f}× the "
                         f"byte-copy limit (met); skopeo took {sec('skopeo_cold') or 0:.2f} s"
                         + (", itself under that limit here." if curl and (sec("skopeo_cold") or 0) < curl
                            else "."))
        elif "no-op at scale" in name:
            key = ("ferry_registry_scale_noop" if name.startswith("registry")
                   else "ferry_docker_scale_noop")
            req = rows.get(key, {}).get("requests", {})
            heads = req.get("src_head", 0) + req.get("dst_head", 0)
            lines.append(f"{name}: {heads} HEADs (one to the source, one to the target per "
                         f"tag) in {sec(key) or 0:.2f} s, at the registry client's request "
                         "limit per registry (8 in flight by default).")
        elif "source manifest GETs" in name:
            lines.append(f"{name}: ferry reads each manifest once ({fixtures['manifests']}); "
                         "the daemon's own pull GETs each platform manifest again (the "
                         "difference): only fetching the blobs itself and `docker load` "
                         "removes that, not built (see README, Speed).")
        elif name.startswith("1 GiB"):
            split = split_of(rows, "ferry_registry_big") or {}
            lines.append(f"{name}: downloading {split.get('download', 0):.2f} s, uploading "
                         f"{split.get('push', 0):.2f} s.")
    return lines


def breakdown_table(rows):
    """Where ferry's time went, beside its totals (medians over the rounds)."""
    lines = ["| ferry run | seconds | downloading | extracting | pushing (compress + upload) "
             "| none of these (decide, registry calls, tag, lists) |",
             "|---|---:|---:|---:|---:|---:|"]
    for key, label, _ in ROWS:
        runs = [r for r in rows.get(key, {}).get("rounds", []) if "breakdown" in r]
        if not runs or not rows[key]["ok"]:
            continue
        split = {p: statistics.median(r["breakdown"][p] for r in runs) for p in (*PHASES, "other")}
        lines.append(f"| {label} | {rows[key]['seconds']:.2f} | {split['download']:.2f} "
                     f"| {split['extract']:.2f} | {split['push']:.2f} | {split['other']:.2f} |")
    return lines


def render(results_tsv, facts_env, out_dir, readme=None):
    facts = load_facts(facts_env)
    rows = load_results(results_tsv)
    for row in rows.values():
        ref = REFERENCE[row["key"]]
        base = ok_seconds(rows, ref) if ref else None
        row["reference"] = ref
        row["ratio_vs_reference"] = round(row["seconds"] / base, 3) if base and row["ok"] else None
    fixtures = facts["fixtures"]
    goals = targets(rows, fixtures)
    skipped = facts["scenarios"]["skipped"]
    complete = all(r["ok"] for r in rows.values())
    doc = {**facts, "complete": complete,
           "results": [rows[k] for k, _, _ in ROWS if k in rows], "targets": goals}

    m, f, sc = facts["machine"], facts["ferry"], facts["scenarios"]
    head = [
        f"{facts['date']} · {m['nproc']} cores, {m['mem_total']}, load average "
        f"{m['loadavg_at_start']} at start, {m['loadavg_at_end']} at end · dockerd {m['dockerd']}"
        f" · distribution {m['registry']} · skopeo {m['skopeo']} · ferry {f['commit']}"
        f"{' (dirty)' if f['dirty'] else ''}, `--jobs {f['jobs']}`",
        "",
        f"Fixtures: {fixtures['tags']} tags in {fixtures['repositories']} repositories "
        f"({fixtures['single_tags']} single-platform, {fixtures['multi_tags']} linux/amd64+arm64 "
        f"lists), {fixtures['blob_count']} distinct blobs, {mib(fixtures['blob_bytes'])} "
        f"of random (incompressible) data; {fixtures['new_tags']} new tags (one per repository) "
        f"for the incremental runs. Once: no-op at scale ({sc['scale']} repositories × tags), "
        f"WAN ({sc['wan']} in front of the target), one {sc['big_mib']} MiB layer."
        + (f" Skipped this run: {', '.join(skipped)}." if skipped else ""),
    ]
    body = table(rows, facts["rounds"])
    split = breakdown_table(rows)
    goal_lines = ["| target | measured | met |", "|---|---|---|"]
    goal_lines += [f"| {g['target']} | {g['shown']} | {'yes' if g['met'] else '**NO**'} |"
                   for g in goals]
    missed = [g["target"] for g in goals if not g["met"]]
    verdict = "All targets met." if not missed else "Missed: " + "; ".join(missed) + "."
    if not complete:
        verdict = "INCOMPLETE RUN: a measurement failed (see the table). " + verdict
    extra = details(rows)
    why = explain(goals, rows, fixtures)
    commands = ["| measurement | command (with round 1's paths) |", "|---|---|"]
    commands += [f"| `{k}` | `{rows[k]['command']}` |" for k, _, _ in ROWS if k in rows]

    md = ["# ferry benchmark: latest run", "", "Written by `scripts/bench`; do not edit.", "",
          *head, "", *body, "", "## Where ferry's time went", "",
          "Wall seconds during which at least one job had a layer in that phase (from the "
          "timestamps of the progress events in ferry's `--report`; phases overlap).", "",
          *split, "", "## Targets", "", *goal_lines, "", verdict, "",
          *(["## Why each miss", "", *[f"* {w}" for w in why], ""] if why else []),
          "## Details", "", *[f"* {e}" for e in extra], "",
          f"Every group ran {facts['rounds']} times, the order flipping between rounds (the "
          "WAN, scale and 1 GiB scenarios once); each measured run starts against a fresh "
          "target registry, cold runs against a daemon without any fixture layer. "
          "`$SRC`/`$TARGET` are loopback `docker-registry` instances, `$TMP` the run's temp "
          "dir. Wall clock per run; peak RSS from `/usr/bin/time -f %M` (ferry and skopeo); "
          "request counts from the registries' access logs. Absolute times vary between "
          "machines and with other load on the machine: compare within one run.",
          "", *commands, ""]
    with open(f"{out_dir}/latest.md", "w", encoding="utf-8") as file:
        file.write("\n".join(md))
    with open(f"{out_dir}/latest.json", "w", encoding="utf-8") as file:
        json.dump(doc, file, indent=2, ensure_ascii=False)
        file.write("\n")
    print("\n".join([*head, "", *body, "", *split, "", *goal_lines, "", verdict, "", *why,
                     "", *extra]))
    if readme:
        update_readme(readme, [*head, "", *body, "", *split, "", *goal_lines, "", verdict, "",
                               *[f"* {w}" for w in why]])
    return 0 if complete else 1


def update_readme(path, lines):
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        print(f"note: no {path}: the figures are in docs/bench/latest.md")
        return
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        print(f"note: {path} has no {README_BEGIN} … {README_END} block: not updated")
        return
    block = "\n".join([README_BEGIN, "", *lines, "",
                       "Details: [docs/bench/latest.md](docs/bench/latest.md).", ""])
    with open(path, "w", encoding="utf-8") as file:
        file.write(text[:begin] + block + text[end:])
    print(f"updated the figures in {path}")


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    return render(*argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
