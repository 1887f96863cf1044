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

ROWS = [
    ("loop", "docker pull/tag/push loop (sequential)"),
    ("ferry_docker_cold", "ferry docker, cold (empty daemon, fresh target)"),
    ("ferry_docker_warm", "ferry docker, warm (layers in daemon, fresh target)"),
    ("ferry_docker_noop", "ferry docker, no-op (same target and state)"),
    ("ferry_registry_cold", "ferry registry transport, cold (fresh target, blob cache)"),
    ("ferry_registry_noop", "ferry registry transport, no-op"),
    ("skopeo_cold", "skopeo sync --all, cold (fresh target)"),
    ("skopeo_noop", "skopeo sync --all, no-op"),
]
RATIO_TARGETS = [("ferry_docker_cold", "docker transport cold ≤ 0.6× the loop", 0.6),
                 ("ferry_docker_warm", "docker transport warm ≤ 0.4× the loop", 0.4)]
NOOP_LIMIT = 1.0
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
                     "multi_tags": int(env["multi_tags"]),
                     "repositories": int(env["repositories"]), **blobs},
        "setup_seconds": int(env["setup_seconds"]),
    }


def read_extra(key, path):
    if path == "-":
        return {}
    with open(path, encoding="utf-8") as file:
        if key == "loop":
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


def load_results(path):
    """Rows grouped by key: every round, and the median over the rounds."""
    rows = {}
    with open(path, encoding="utf-8") as tsv:
        for line in tsv:
            key, rnd, micros, rss, rc, verified, extra, command = line.rstrip("\n").split("\t")
            run = {"round": int(rnd), "seconds": round(int(micros) / 1e6, 3),
                   "exit_code": int(rc), "verified": verified,
                   "peak_rss_kib": int(rss) if rss.isdigit() else None,
                   **read_extra(key, extra)}
            run["ok"] = run["exit_code"] == 0 and verified.startswith("ok")
            row = rows.setdefault(key, {"key": key, "label": dict(ROWS)[key],
                                        "command": command, "rounds": []})
            row["rounds"].append(run)
    for row in rows.values():
        runs = row["rounds"]
        row["ok"] = all(r["ok"] for r in runs)
        times = [r["seconds"] for r in runs]
        row["seconds"] = round(statistics.median(times), 2) if row["ok"] else None
        row["min"], row["max"] = round(min(times), 2), round(max(times), 2)
        rss = [r["peak_rss_kib"] for r in runs if r["peak_rss_kib"]]
        row["peak_rss_kib"] = max(rss) if rss and row["key"] != "loop" else None
    return rows


def per_round(rows, key):
    return {r["round"]: r["seconds"] for r in rows[key]["rounds"]} if key in rows else {}


def targets(rows, tag_count):
    loop = rows.get("loop")
    loop_s = loop["seconds"] if loop and loop["ok"] else None
    out = []
    for key, name, limit in RATIO_TARGETS:
        row = rows.get(key)
        if not (row and row["ok"] and loop_s):
            out.append({"target": name, "limit": limit, "measured": None, "met": False,
                        "shown": "not measured"})
            continue
        ratio = row["seconds"] / loop_s
        loops = per_round(rows, "loop")
        paired = [round(s / loops[n], 3) for n, s in per_round(rows, key).items() if n in loops]
        hits = sum(p <= limit for p in paired)
        out.append({"target": name, "limit": limit, "measured": round(ratio, 3),
                    "per_round": paired, "met": ratio <= limit,
                    "shown": f"{ratio:.3f}× (per round: {', '.join(f'{p:.3f}' for p in paired)}; "
                             f"met in {hits}/{len(paired)})"})
    row = rows.get("ferry_docker_noop")
    name = f"docker transport no-op of 40 tags < 1 s (here {tag_count} tags)"
    if row and row["ok"]:
        times = [r["seconds"] for r in row["rounds"]]
        out.append({"target": name, "limit": NOOP_LIMIT, "measured": row["seconds"],
                    "per_round": times, "met": row["seconds"] < NOOP_LIMIT,
                    "shown": f"{row['seconds']:.2f} s (max {max(times):.2f} s)"})
    else:
        out.append({"target": name, "limit": NOOP_LIMIT, "measured": None, "met": False,
                    "shown": "not measured"})
    return out


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def table(rows, loop_s, rounds):
    lines = [f"| measurement | seconds (median of {rounds}) | min–max | × docker loop | peak RSS |",
             "|---|---:|---:|---:|---:|"]
    for key, label in ROWS:
        row = rows.get(key)
        if row is None:
            continue
        if not row["ok"]:
            bad = next(r for r in row["rounds"] if not r["ok"])
            why = f"exit {bad['exit_code']}" if bad["exit_code"] else bad["verified"]
            lines.append(f"| {label} | FAILED in round {bad['round']} ({why}) | – | – | – |")
            continue
        ratio = f"{row['seconds'] / loop_s:.2f}" if loop_s else "–"
        rss = mib(row["peak_rss_kib"] * 1024) if row["peak_rss_kib"] else "–"
        lines.append(f"| {label} | {row['seconds']:.2f} | {row['min']:.2f}–{row['max']:.2f} "
                     f"| {ratio} | {rss} |")
    return lines


def details(rows):
    lines = []
    loop = rows.get("loop")
    if loop and all("phases_seconds" in r for r in loop["rounds"]):
        phases = {p: statistics.median(r["phases_seconds"][p] for r in loop["rounds"])
                  for p in ("pull", "tag", "push", "manifest")}
        lines.append(f"Loop split (medians): pull {phases['pull']:.2f} s, tag {phases['tag']:.2f} s, "
                     f"push {phases['push']:.2f} s, manifest lists {phases['manifest']:.2f} s.")
    for key, _ in ROWS:
        runs = [r for r in rows.get(key, {}).get("rounds", []) if "ferry_report" in r]
        if runs:
            own = statistics.median(r["ferry_report"]["elapsed_seconds"] for r in runs)
            t = runs[0]["ferry_report"]["totals"]
            split = {p: statistics.median(r["breakdown"][p] for r in runs)
                     for p in (*PHASES, "other")}
            lines.append(f"`{key}`: ferry's own clock {own:.2f} s (median); its report: "
                         f"copied {t['copied']}, skipped {t['skipped']}, failed {t['failed']}, "
                         f"bytes {mib(t['bytes'])}; wall seconds with a layer downloading "
                         f"{split['download']:.2f}, extracting {split['extract']:.2f}, "
                         f"pushing (compress + upload) {split['push']:.2f}, in none of these "
                         f"(decide, ferry's registry calls, tag, lists) {split['other']:.2f}.")
    return lines


def render(results_tsv, facts_env, out_dir, readme=None):
    facts = load_facts(facts_env)
    rows = load_results(results_tsv)
    loop = rows.get("loop")
    loop_s = loop["seconds"] if loop and loop["ok"] else None
    for row in rows.values():
        row["ratio_vs_loop"] = round(row["seconds"] / loop_s, 3) if loop_s and row["ok"] else None
    fixtures = facts["fixtures"]
    goals = targets(rows, fixtures["tags"])
    complete = len(rows) == len(ROWS) and all(r["ok"] for r in rows.values())
    doc = {**facts, "complete": complete, "results": [rows[k] for k, _ in ROWS if k in rows],
           "targets": goals}

    m, f = facts["machine"], facts["ferry"]
    head = [
        f"{facts['date']} · {m['nproc']} cores, {m['mem_total']}, load average "
        f"{m['loadavg_at_start']} at start, {m['loadavg_at_end']} at end · dockerd {m['dockerd']}"
        f" · distribution {m['registry']} · skopeo {m['skopeo']} · ferry {f['commit']}"
        f"{' (dirty)' if f['dirty'] else ''}, `--jobs {f['jobs']}`",
        "",
        f"Fixtures: {fixtures['tags']} tags in {fixtures['repositories']} repositories "
        f"({fixtures['single_tags']} single-platform, {fixtures['multi_tags']} linux/amd64+arm64 "
        f"lists), {fixtures['blob_count']} distinct blobs, {mib(fixtures['blob_bytes'])} "
        "of random (incompressible) data.",
    ]
    body = table(rows, loop_s, facts["rounds"])
    goal_lines = ["| target | measured | met |", "|---|---|---|"]
    goal_lines += [f"| {g['target']} | {g['shown']} | {'yes' if g['met'] else '**NO**'} |"
                   for g in goals]
    missed = [g["target"] for g in goals if not g["met"]]
    verdict = "All targets met." if not missed else "Missed: " + "; ".join(missed) + "."
    if not complete:
        verdict = "INCOMPLETE RUN: a measurement failed (see the table). " + verdict
    extra = details(rows)
    commands = ["| measurement | command (with round 1's paths) |", "|---|---|"]
    commands += [f"| `{k}` | `{rows[k]['command']}` |" for k, _ in ROWS if k in rows]

    md = ["# ferry benchmark: latest run", "", "Written by `scripts/bench`; do not edit.", "",
          *head, "", *body, "", "## Targets", "", *goal_lines, "", verdict, "",
          "## Details", "", *[f"* {e}" for e in extra], "",
          f"Every group ran {facts['rounds']} times, the order flipping between rounds; each "
          "measured run starts against a fresh target registry, cold runs against a daemon "
          "without any fixture layer. `$SRC`/`$TARGET` are loopback `docker-registry` "
          "instances, `$TMP` the run's temp dir. Wall clock per run; peak RSS from "
          "`/usr/bin/time -f %M` (ferry and skopeo). Absolute times vary between machines "
          "and with other load on the machine: compare within one run.",
          "", *commands, ""]
    with open(f"{out_dir}/latest.md", "w", encoding="utf-8") as file:
        file.write("\n".join(md))
    with open(f"{out_dir}/latest.json", "w", encoding="utf-8") as file:
        json.dump(doc, file, indent=2, ensure_ascii=False)
        file.write("\n")
    print("\n".join([*head, "", *body, "", *goal_lines, "", verdict, "", *extra]))
    if readme:
        update_readme(readme, [*body, "", *goal_lines, "", verdict])
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
