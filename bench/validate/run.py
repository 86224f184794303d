#!/usr/bin/env python3
"""Instructions per validated request body: gatewayc's generated validators against jsonschema.

Builds bench/validate in release mode, then for each corpus runs the benchmark binary
natively once (`check`: how many bodies, which were dropped, any disagreement between the
validators), and under callgrind once per validator and body set:

    valid    bodies both validators accept: baseline, gatewayc, jsonschema
    invalid  bodies both reject: baseline, gatewayc, jsonschema, jsonschema-errors

Only the measuring function is counted (`--toggle-collect`), so start-up, building the
jsonschema validators and the checks are not; the `baseline` loop does everything but the
validation, and its count is subtracted:

    Ir per body = (Ir(validator) - Ir(baseline)) / (iterations x bodies)

`gatewayc` is the generated function collecting violations, as the gateway calls it;
`jsonschema` is `Validator::is_valid` (a yes or no, its cheapest call); `jsonschema-errors`
is `Validator::iter_errors` (every error with its location, what gatewayc's call gives).
Callgrind counts instructions, not time: the same binary and arguments give the same count
however busy the machine is.

Usage (from anywhere):
    python3 bench/validate/run.py [--iterations N] [--corpus github|stripe]... [--repeat 2]
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
BINARY = HERE / "target" / "release" / "validate-bench"
CORPORA = ("github", "stripe")
SETS = {
    "valid": ("baseline", "gatewayc", "jsonschema"),
    "invalid": ("baseline", "gatewayc", "jsonschema", "jsonschema-errors"),
}
# The function each mode's work happens in (src/main.rs).
FUNCTIONS = {
    "baseline": "measure_baseline",
    "gatewayc": "measure_gatewayc",
    "jsonschema": "measure_jsonschema_is_valid",
    "jsonschema-errors": "measure_jsonschema_iter_errors",
}
# Largest relative difference between repeats taken as noise (see the end of main).
TOLERANCE = 0.001
SUMMARY = re.compile(r"^corpus=\S+ mode=\S+ .*$", re.MULTILINE)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build():
    log("building bench/validate (release)...")
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
    """Runs the checks natively; returns (summary, the report's lines)."""
    proc = subprocess.run([str(BINARY), corpus, "check"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{corpus}: the check failed")
    return summary_fields(proc.stdout), proc.stdout.splitlines()[:-1]


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


def callgrind(valgrind, corpus, mode, body_set, iterations, out_dir, tag):
    out_file = out_dir / f"callgrind.{corpus}.{body_set}.{mode}.{tag}.out"
    cmd = [
        "nice", "-n", "10", valgrind, "--tool=callgrind",
        f"--callgrind-out-file={out_file}",
        f"--toggle-collect=*{FUNCTIONS[mode]}*",
        str(BINARY), corpus, mode, body_set, str(iterations),
    ]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{corpus} {body_set} {mode}: exit status {proc.returncode}")
    ir = total_ir(out_file)
    if ir == 0:
        raise SystemExit(f"{corpus} {mode}: nothing counted; is {FUNCTIONS[mode]} in the binary?")
    log(f"  {corpus:7} {body_set:7} {mode:17} {ir:>14,} Ir  ({seconds:.1f} s)")
    return ir


def table(headers, rows, markdown):
    if markdown:
        print("| " + " | ".join(headers) + " |")
        print("| --- |" + "|".join(" ---: " for _ in headers[1:]) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                    for i, (h, w) in enumerate(zip(headers, widths))))
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=20,
                    help="rounds over all bodies per run (default 20)")
    ap.add_argument("--corpus", action="append", choices=CORPORA,
                    help="corpus to measure, repeatable (default: all)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run everything this many times and check the counts agree")
    ap.add_argument("--no-build", action="store_true", help="use the binary as it is")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "validate",
                    help="where callgrind's files go (default bench/out/validate)")
    ap.add_argument("--valgrind", default=shutil.which("valgrind") or "valgrind")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--report", action="store_true",
                    help="print each corpus's check report (dropped bodies, disagreements)")
    args = ap.parse_args()
    corpora = args.corpus or list(CORPORA)

    if not args.no_build:
        build()
    if not BINARY.exists():
        raise SystemExit(f"{BINARY.relative_to(ROOT)} is missing; build it first")
    args.out.mkdir(parents=True, exist_ok=True)

    infos = {}
    # (corpus, set) -> {mode: Ir minus baseline}
    work = {}
    unstable = []
    start = time.monotonic()
    for corpus in corpora:
        info, lines = check(corpus)
        infos[corpus] = info
        if args.report:
            print("\n".join(lines))
        for body_set, modes in SETS.items():
            counts = {}
            for rep in range(args.repeat):
                for mode in modes:
                    ir = callgrind(args.valgrind, corpus, mode, body_set, args.iterations,
                                   args.out, rep + 1)
                    counts.setdefault(mode, []).append(ir)
            for mode, irs in counts.items():
                if len(set(irs)) > 1:
                    spread = (max(irs) - min(irs)) / min(irs)
                    unstable.append((spread, f"{corpus} {body_set} {mode}: {irs}"))
            base = counts["baseline"][0]
            work[(corpus, body_set)] = {m: counts[m][0] - base for m in modes if m != "baseline"}
            work[(corpus, body_set)]["loop"] = base
    elapsed = time.monotonic() - start

    headers = ["corpus", "bodies", "gatewayc Ir/body", "jsonschema is_valid Ir/body",
               "is_valid/gatewayc", "jsonschema iter_errors Ir/body", "iter_errors/gatewayc"]
    rows = []
    for body_set in SETS:
        totals = {}
        n_total = 0
        for corpus in corpora:
            n = int(infos[corpus][body_set])
            w = work[(corpus, body_set)]
            rows.append(row(f"{corpus} {body_set}", n, args.iterations, w))
            n_total += n
            for k, v in w.items():
                totals[k] = totals.get(k, 0) + v
        if len(corpora) > 1:
            rows.append(row(f"all {body_set}", n_total, args.iterations, totals))
    table(headers, rows, args.markdown)

    print()
    for corpus in corpora:
        i = infos[corpus]
        print(f"{corpus}: {i['operations']} operations; {i['valid']} valid bodies "
              f"({i['no_body']} operations without one), {i['invalid']} invalid; "
              f"dropped: {i['dropped']} candidates both reject, {i['still_valid']} mutations "
              f"both accept; jsonschema could not build {i['unbuilt']}; "
              f"disagreements: {i['disagreements']}")
    print(f"\n{args.iterations} iterations over every body; "
          f"{datetime.date.today().isoformat()}; valgrind runs took {elapsed:.0f} s")
    # Rejecting a body looks members up in hash maps seeded at random (serde_json's map,
    # jsonschema's), so the invalid sets' counts move by a few hundred instructions in
    # millions between runs; more than TOLERANCE is a real instability.
    worst = max((spread for spread, _ in unstable), default=0.0)
    if args.repeat > 1:
        if not unstable:
            print(f"counts identical across {args.repeat} repeats")
        else:
            print(f"counts differed between repeats by at most {worst:.4%}: "
                  + "; ".join(text for _, text in unstable))
            if worst > TOLERANCE:
                print(f"WARNING: more than {TOLERANCE:.1%}")
    disagreements = sum(int(infos[c]["disagreements"]) for c in corpora)
    if disagreements:
        print(f"WARNING: the validators disagree on {disagreements} bodies "
              "(not measured; --report lists them)")
    try:
        where = args.out.resolve().relative_to(ROOT)
    except ValueError:
        where = args.out
    print(f"callgrind files: {where} (callgrind_annotate FILE shows where the instructions go)")
    return 1 if worst > TOLERANCE else 0


def row(label, bodies, iterations, w):
    validations = bodies * iterations
    g = w["gatewayc"] / validations
    j = w["jsonschema"] / validations
    cells = [label, str(bodies), f"{g:,.1f}", f"{j:,.1f}", f"{j / g:.2f}"]
    if "jsonschema-errors" in w:
        e = w["jsonschema-errors"] / validations
        cells += [f"{e:,.1f}", f"{e / g:.2f}"]
    else:
        cells += ["-", "-"]
    return cells


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
