#!/usr/bin/env python3
"""Instructions per route lookup: gatewayc's generated router against matchit.

Builds bench/router in release mode, then for each corpus runs the benchmark binary under
callgrind once per router (`baseline`, `gatewayc`, `matchit`). Only the measuring function
is counted (`--toggle-collect`), so start-up, router construction and the correctness check
are not; the `baseline` loop does everything but the lookup, and its count is subtracted:

    Ir per lookup = (Ir(router) - Ir(baseline)) / (iterations x paths)

Callgrind counts instructions, not time, so the figures do not depend on how busy the
machine is: the same binary and arguments give the same count.

Usage (from anywhere):
    python3 bench/router/run.py [--iterations N] [--corpus github|stripe]... [--repeat 2]
"""

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BINARY = HERE / "target" / "release" / "router-bench"
ROUTERS = ("baseline", "gatewayc", "matchit")
CORPORA = ("github", "stripe")
SUMMARY = re.compile(r"^corpus=\S+ router=\S+ .*$", re.MULTILINE)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build():
    log("building bench/router (release)...")
    start = time.monotonic()
    subprocess.run(
        ["nice", "-n", "10", "cargo", "build", "--release", "--quiet",
         "--manifest-path", str(HERE / "Cargo.toml")],
        check=True,
    )
    log(f"  built in {time.monotonic() - start:.1f} s")


def summary_fields(stdout):
    """The binary's last line, `key=value ...`, as a dict."""
    lines = SUMMARY.findall(stdout)
    if not lines:
        raise SystemExit(f"no summary line in the benchmark's output:\n{stdout}")
    return dict(item.split("=", 1) for item in lines[-1].split())


def check(corpus):
    """Runs the correctness check natively; returns (summary, refused-template lines)."""
    proc = subprocess.run([str(BINARY), corpus, "check"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{corpus}: the routers disagree with the expected operations")
    refused = [l for l in proc.stdout.splitlines() if l.startswith("refused by matchit")]
    return summary_fields(proc.stdout), refused


def total_ir(out_file):
    """The `totals:` (or `summary:`) line of a callgrind output file."""
    found = None
    with open(out_file) as f:
        for line in f:
            if line.startswith("totals:") or (found is None and line.startswith("summary:")):
                found = int(line.split()[1])
    if found is None:
        raise SystemExit(f"{out_file}: no totals line")
    return found


def callgrind(valgrind, corpus, router, iterations, out_dir, tag):
    out_file = out_dir / f"callgrind.{corpus}.{router}.{tag}.out"
    cmd = [
        "nice", "-n", "10", valgrind, "--tool=callgrind",
        f"--callgrind-out-file={out_file}",
        f"--toggle-collect=*measure_{router}*",
        str(BINARY), corpus, router, str(iterations),
    ]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{corpus} {router}: exit status {proc.returncode}")
    ir = total_ir(out_file)
    if ir == 0:
        raise SystemExit(f"{corpus} {router}: nothing counted; is measure_{router} in the binary?")
    log(f"  {corpus:7} {router:9} {ir:>13,} Ir  ({seconds:.1f} s)")
    return ir, summary_fields(proc.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=200,
                    help="rounds over all paths per run (default 200)")
    ap.add_argument("--corpus", action="append", choices=CORPORA,
                    help="corpus to measure, repeatable (default: all)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run everything this many times and check the counts agree")
    ap.add_argument("--no-build", action="store_true", help="use the binary as it is")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "router",
                    help="where callgrind's files go (default bench/out/router)")
    ap.add_argument("--valgrind", default=shutil.which("valgrind") or "valgrind")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()
    corpora = args.corpus or list(CORPORA)

    if not args.no_build:
        build()
    if not BINARY.exists():
        raise SystemExit(f"{BINARY.relative_to(ROOT)} is missing; build it first")
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    unstable = []
    start = time.monotonic()
    for corpus in corpora:
        info, refused = check(corpus)
        for line in refused:
            log(f"  {corpus}: {line}")
        counts = {}
        for rep in range(args.repeat):
            for router in ROUTERS:
                ir, fields = callgrind(args.valgrind, corpus, router, args.iterations,
                                       args.out, rep + 1)
                counts.setdefault(router, []).append(ir)
        for router, irs in counts.items():
            if len(set(irs)) > 1:
                unstable.append(f"{corpus} {router}: {irs}")
        paths = int(info["paths"])
        lookups = args.iterations * paths
        base = counts["baseline"][0]
        per = {r: (counts[r][0] - base) / lookups for r in ("gatewayc", "matchit")}
        rows.append({
            "corpus": corpus,
            "operations": int(info["operations"]),
            "paths": paths,
            "refused": f"{info['refused_templates']} ({info['refused_operations']} ops)",
            "gatewayc": per["gatewayc"],
            "matchit": per["matchit"],
            "ratio": per["matchit"] / per["gatewayc"],
            "loop": base / lookups,
        })
    elapsed = time.monotonic() - start

    headers = ["corpus", "operations", "paths", "refused by matchit",
               "gatewayc Ir/lookup", "matchit Ir/lookup", "matchit/gatewayc",
               "loop Ir/path"]
    table = [[r["corpus"], str(r["operations"]), str(r["paths"]), r["refused"],
              f"{r['gatewayc']:.1f}", f"{r['matchit']:.1f}", f"{r['ratio']:.2f}",
              f"{r['loop']:.1f}"] for r in rows]
    if args.markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "|".join(" --- " for _ in headers) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                        for i, (h, w) in enumerate(zip(headers, widths))))
        for row in table:
            print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths))))
    print(f"\n{args.iterations} iterations over every path; "
          f"{datetime.date.today().isoformat()}; valgrind runs took {elapsed:.0f} s")
    if args.repeat > 1:
        if unstable:
            print("WARNING: counts differed between repeats: " + "; ".join(unstable))
        else:
            print(f"counts identical across {args.repeat} repeats")
    try:
        where = args.out.resolve().relative_to(ROOT)
    except ValueError:
        where = args.out
    print(f"callgrind files: {where} (callgrind_annotate FILE shows where the instructions go)")
    return 1 if unstable else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
