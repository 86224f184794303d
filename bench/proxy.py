#!/usr/bin/env python3
"""Pinned, interleaved proxy benchmark: gateways versus NGINX.

Measures, round by round and in one run:

  direct    wrk straight at the upstream (reference only, no proxy CPU)
  nginx     NGINX reverse proxy (keepalive upstream pool), the yardstick
  nginx-b   a second identical NGINX: the A/A control / noise floor
  <name>    each gateway given with --gateway name=command

The load generator (wrk) and the upstream share one CPU, the proxy under
test runs alone on another. The figure of merit is CPU time per request of
the proxy process tree, compared as a ratio to `nginx` in the same run.

Python 3 standard library only. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

UPSTREAM_BODY = '{"id":1,"name":"Rex","tag":"dog"}'
RESERVED_NAMES = ("direct", "nginx", "nginx-b")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A fatal problem (process failed to start, wrk failed, ...)."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# /proc helpers


def _read_stat(pid: int) -> tuple[int, int] | None:
    """Return (ppid, utime+stime+cutime+cstime in ticks) or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after last ')'.
    rest = data[data.rindex(")") + 2 :].split()
    # rest[0] = state (field 3), rest[1] = ppid (4), rest[11..14] = fields 14..17
    ppid = int(rest[1])
    ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
    return ppid, ticks


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    task_dir = f"/proc/{pid}/task"
    try:
        tids = os.listdir(task_dir)
    except FileNotFoundError:
        return kids
    found_file = False
    for tid in tids:
        try:
            with open(f"{task_dir}/{tid}/children") as f:
                found_file = True
                kids.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            continue
    if found_file:
        return kids
    # Kernel without CONFIG_PROC_CHILDREN: scan every process for its ppid.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _read_stat(int(entry))
            if st and st[0] == pid:
                kids.append(int(entry))
    return kids


def process_tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in pids:
            continue
        pids.append(pid)
        todo.extend(_children(pid))
    return pids


def tree_cpu_ticks(root: int) -> tuple[int, list[int]]:
    """CPU ticks (user+system, including reaped children) of a process tree.

    Reaped children are included through cutime/cstime so that a worker
    exiting mid-measurement does not make the total go backwards.
    """
    total, pids = 0, []
    for pid in process_tree(root):
        st = _read_stat(pid)
        if st is not None:
            total += st[1]
            pids.append(pid)
    return total, pids


# --------------------------------------------------------------------------
# small utilities


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    out = text.strip().splitlines()[-lines:]
    return "\n".join("    " + l for l in out) if out else "    (empty)"


_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(value: str, unit: str) -> float:
    return float(value) * _UNITS_US[unit]


def parse_wrk(output: str) -> dict:
    res: dict = {"latency_us": {}, "socket_errors": {}, "non_2xx_3xx": 0}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", output, re.M)
    if not m:
        raise BenchError("could not find request count in wrk output:\n" + output)
    res["requests"] = int(m.group(1))
    res["wrk_duration_s"] = to_us(m.group(2), m.group(3)) / 1e6
    m = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not m:
        raise BenchError("could not find Requests/sec in wrk output:\n" + output)
    res["rps"] = float(m.group(1))
    for pm in re.finditer(r"^\s+(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M):
        res["latency_us"][f"{float(pm.group(1)):g}"] = to_us(pm.group(2), pm.group(3))
    if "50" not in res["latency_us"] or "99" not in res["latency_us"]:
        raise BenchError("could not find latency distribution in wrk output:\n" + output)
    m = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if m:
        res["socket_errors"] = dict(
            zip(("connect", "read", "write", "timeout"), (int(g) for g in m.groups()))
        )
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if m:
        res["non_2xx_3xx"] = int(m.group(1))
    return res


# --------------------------------------------------------------------------
# NGINX configs


def _common_nginx_head(d: Path, worker_connections: int = 4096) -> str:
    return f"""\
worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile 8192;

events {{
    worker_connections {worker_connections};
}}
"""


def _temp_paths(d: Path) -> str:
    return "\n".join(
        f"    {kind}_temp_path {d}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )


JWKS_PATH = "/.well-known/jwks.json"


def upstream_conf(d: Path, port: int, jwks: str | None = None) -> str:
    # With --jwks the upstream also plays the identity provider: the gateway fetches its
    # keys from there once at start-up (then on an unknown kid), never per request.
    jwks_location = "" if jwks is None else f"""
        location = {JWKS_PATH} {{
            default_type application/json;
            alias {jwks};
        }}"""
    return _common_nginx_head(d) + f"""
http {{
    access_log off;
{_temp_paths(d)}
    keepalive_requests 100000;
    keepalive_timeout 300s;

    server {{
        listen 127.0.0.1:{port} backlog=4096;{jwks_location}
        location / {{
            default_type application/json;
            return 200 '{UPSTREAM_BODY}';
        }}
    }}
}}
"""


# What the generated gateway does to every request besides proxying it; with
# --nginx-config gateway (the default) NGINX is asked to do the same work, so the
# comparison is like for like. --nginx-config plain leaves NGINX a bare pass-through.
GATEWAY_EQUIVALENT = """
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Request-Id $request_id;
            add_header X-Request-Id $request_id always;"""


def proxy_conf(d: Path, port: int, upstream_port: int, flavour: str = "gateway") -> str:
    extra = GATEWAY_EQUIVALENT if flavour == "gateway" else ""
    return _common_nginx_head(d) + f"""
http {{
    access_log off;
{_temp_paths(d)}
    # Do not recycle client connections during a measurement.
    keepalive_requests 100000;
    keepalive_timeout 300s;

    upstream pets {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 100000;
    }}

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://pets;
            proxy_http_version 1.1;
            proxy_set_header Connection "";{extra}
        }}
    }}
}}
"""


# --------------------------------------------------------------------------
# process management


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen, port: int, logs: list[Path]):
        self.name = name
        self.popen = popen
        self.port = port
        self.logs = logs

    @property
    def pid(self) -> int:
        return self.popen.pid


class Harness:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gatewayc-proxy-bench-"))
        self.procs: list[Proc] = []
        self.wrk: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------

    def spawn(self, name: str, argv: list[str], cpu: str, port: int,
              env: dict | None = None, extra_logs: list[Path] | None = None) -> Proc:
        out = self.tmp / f"{name}.out.log"
        with open(out, "wb") as f:
            popen = subprocess.Popen(
                ["taskset", "-c", cpu, *argv],
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: clean kill, no stray SIGINT
            )
        proc = Proc(name, popen, port, [out, *(extra_logs or [])])
        self.procs.append(proc)
        return proc

    def wait_ready(self, proc: Proc, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rc = proc.popen.poll()
            if rc is not None:
                raise BenchError(self._startup_failure(proc, f"exited with status {rc}"))
            try:
                with socket.create_connection(("127.0.0.1", proc.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(self._startup_failure(
                    proc, f"did not accept connections on 127.0.0.1:{proc.port} within {timeout:.0f} s"))
            time.sleep(0.05)

    def _startup_failure(self, proc: Proc, why: str) -> str:
        parts = [f"{proc.name} {why}"]
        for p in proc.logs:
            parts.append(f"  --- {p.name} ---\n{tail(p)}")
        return "\n".join(parts)

    def start_nginx(self, name: str, conf_text: str, port: int, cpu: str) -> Proc:
        d = self.tmp / name
        d.mkdir()
        conf = d / "nginx.conf"
        conf.write_text(conf_text)
        proc = self.spawn(
            name,
            [self.args.nginx, "-p", f"{d}/", "-c", str(conf), "-e", f"{d}/error.log"],
            cpu, port, extra_logs=[d / "error.log"],
        )
        self.wait_ready(proc, self.args.start_timeout)
        return proc

    def start_gateway(self, name: str, cmd: list[str], port: int, admin_port: int,
                      upstream_port: int, cpu: str) -> Proc:
        env = dict(os.environ)
        env.update({
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_WORKERS": "1",
            "GATEWAY_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
            "PETS_URL": f"http://127.0.0.1:{upstream_port}",
        })
        if self.args.jwks:
            env["JWKS_URL"] = f"http://127.0.0.1:{upstream_port}{JWKS_PATH}"
        for kv in self.args.gateway_env:
            k, _, v = kv.partition("=")
            env[k] = v
        proc = self.spawn(name, cmd, cpu, port, env=env)
        self.wait_ready(proc, self.args.start_timeout)
        return proc

    def check_alive(self) -> None:
        for p in self.procs:
            rc = p.popen.poll()
            if rc is not None:
                raise BenchError(self._startup_failure(p, f"died during the run (status {rc})"))

    def cleanup(self) -> None:
        if self.wrk is not None and self.wrk.poll() is None:
            try:
                self.wrk.kill()
                self.wrk.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for p in self.procs:
            if p.popen.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Kill whatever is left in the group (e.g. an NGINX worker).
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                log(f"warning: {p.name} (pid {p.pid}) did not exit")
        if self.args.keep_tmp:
            log(f"temp dir kept: {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- measurement -------------------------------------------------------

    def wrk_argv(self, port: int, seconds: int, latency: bool) -> list[str]:
        argv = ["taskset", "-c", self.args.load_cpu, self.args.wrk, "-t1",
                f"-c{self.args.connections}", f"-d{seconds}s", "--timeout", "5s"]
        if latency:
            argv.append("--latency")
        for h in self.args.header:
            argv += ["-H", h]
        if self.args.body:
            argv += ["-s", str(self.body_script())]
        argv.append(f"http://127.0.0.1:{port}{self.args.path}")
        return argv

    def body_script(self) -> Path:
        """A wrk script that sends every request as a POST of --body, as JSON."""
        script = self.tmp / "post-body.lua"
        if not script.exists():
            body = Path(self.args.body).read_text()
            script.write_text(
                'wrk.method = "POST"\n'
                f"wrk.body = {json.dumps(body)}\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
        return script

    def run_wrk(self, argv: list[str]) -> str:
        self.wrk = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = self.wrk.communicate()
        rc = self.wrk.returncode
        self.wrk = None
        if rc != 0:
            raise BenchError(f"wrk failed with status {rc}: {' '.join(argv)}\n{out}{err}")
        return out

    def measure(self, port: int, cpu_root: int | None) -> dict:
        if self.args.warmup > 0:
            self.run_wrk(self.wrk_argv(port, self.args.warmup, latency=False))
        before = tree_cpu_ticks(cpu_root) if cpu_root else None
        t0 = time.monotonic()
        out = self.run_wrk(self.wrk_argv(port, self.args.duration, latency=True))
        t1 = time.monotonic()
        after = tree_cpu_ticks(cpu_root) if cpu_root else None
        res = parse_wrk(out)
        res["wall_s"] = t1 - t0
        res["wrk_output"] = out
        if before and after:
            dt = after[0] - before[0]
            res["cpu_ticks"] = dt
            res["cpu_pids"] = sorted(set(before[1]) | set(after[1]))
            res["cpu_s"] = dt / CLK_TCK
            res["cpu_us_per_req"] = (dt / CLK_TCK) * 1e6 / res["requests"] if res["requests"] else None
            res["cpu_util"] = (dt / CLK_TCK) / res["wall_s"]
        else:
            res["cpu_ticks"] = res["cpu_s"] = res["cpu_us_per_req"] = res["cpu_util"] = None
            res["cpu_pids"] = []
        res["errors"] = res["non_2xx_3xx"] + sum(res["socket_errors"].values())
        return res


def preflight(port: int, path: str, headers: list[str], body: str | None = None) -> tuple[int | None, str]:
    """One plain request so a misconfigured target is visible up front."""
    hdrs = {}
    for h in headers:
        k, _, v = h.partition(":")
        hdrs[k.strip()] = v.strip()
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST" if body is not None else "GET", path, body=body, headers=hdrs)
        r = c.getresponse()
        body = r.read(200).decode("utf-8", "replace")
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)


# --------------------------------------------------------------------------
# reporting


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def med(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarise(targets: list[str], rounds: list[dict]) -> dict:
    summary: dict = {}
    for t in targets:
        runs = [r[t] for r in rounds if t in r]
        summary[t] = {
            "cpu_us_per_req": med([x["cpu_us_per_req"] for x in runs]),
            "rps": med([x["rps"] for x in runs]),
            "p50_us": med([x["latency_us"]["50"] for x in runs]),
            "p99_us": med([x["latency_us"]["99"] for x in runs]),
            "cpu_util": med([x["cpu_util"] for x in runs]),
            "errors": sum(x["errors"] for x in runs),
            "non_2xx_3xx": sum(x["non_2xx_3xx"] for x in runs),
            "socket_errors": sum(sum(x["socket_errors"].values()) for x in runs),
        }
    base = summary.get("nginx", {}).get("cpu_us_per_req")
    for t in targets:
        if t in ("direct", "nginx"):
            continue
        per_round = []
        for r in rounds:
            a, b = r.get(t, {}).get("cpu_us_per_req"), r.get("nginx", {}).get("cpu_us_per_req")
            if a is not None and b:
                per_round.append(a / b)
        s = summary[t]
        s["ratio_per_round"] = per_round
        s["cpu_ratio"] = s["cpu_us_per_req"] / base if base and s["cpu_us_per_req"] is not None else None
        s["ratio_min"] = min(per_round) if per_round else None
        s["ratio_max"] = max(per_round) if per_round else None
    return summary


def print_table(args, targets: list[str], summary: dict, preflight_info: dict) -> None:
    w = max(10, *(len(t) + 2 for t in targets))
    print()
    print(f"proxy benchmark: {args.rounds} rounds x {args.duration}s, "
          f"wrk -t1 -c{args.connections}, GET {args.path}")
    print(f"wrk + upstream on CPU {args.load_cpu}, proxy under test on CPU {args.proxy_cpu}; "
          f"medians over rounds")
    print()
    hdr = (f"{'target':<{w}}{'CPU us/req':>11}{'proxy CPU':>11}{'req/s':>11}"
           f"{'p50 us':>10}{'p99 us':>10}{'errors':>8}")
    print(hdr)
    print("-" * len(hdr))
    for t in targets:
        s = summary[t]
        util = None if s["cpu_util"] is None else s["cpu_util"] * 100
        name = t + (" !" if s["errors"] else "")
        print(f"{name:<{w}}{fmt(s['cpu_us_per_req'], 2):>11}"
              f"{(fmt(util, 0) + '%') if util is not None else '-':>11}"
              f"{fmt(s['rps'], 0):>11}{fmt(s['p50_us'], 0):>10}{fmt(s['p99_us'], 0):>10}"
              f"{s['errors']:>8}")
    rest = [t for t in targets if t not in ("direct", "nginx")]
    if rest:
        print()
        print("CPU per request relative to nginx (same run)")
        hdr2 = f"{'target':<{w}}{'ratio':>8}{'round min':>11}{'round max':>11}"
        print(hdr2)
        print("-" * len(hdr2))
        for t in rest:
            s = summary[t]
            name = t + (" !" if s["errors"] else "")
            print(f"{name:<{w}}{fmt(s['cpu_ratio'], 2):>8}{fmt(s['ratio_min'], 2):>11}"
                  f"{fmt(s['ratio_max'], 2):>11}")
    warnings = []
    for t in targets:
        s = summary[t]
        if s["errors"]:
            warnings.append(f"WARNING: {t}: {s['non_2xx_3xx']} non-2xx/3xx responses and "
                            f"{s['socket_errors']} socket errors over all rounds; its figures "
                            f"do not describe successful proxying")
        st, body = preflight_info.get(t, (200, ""))
        if st is None or not 200 <= st < 300:
            warnings.append(f"WARNING: {t}: preflight GET {args.path} gave "
                            f"{st if st is not None else 'no response'}: {body[:120]!r}")
    if warnings:
        print()
        for line in warnings:
            print(line)
    print()


# --------------------------------------------------------------------------
# main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Pinned, interleaved proxy benchmark of gateways against NGINX "
                    "(CPU time per request, as a ratio to NGINX in the same run).")
    p.add_argument("--gateway", action="append", default=[], metavar="NAME=COMMAND",
                   help="gateway to benchmark (repeatable). COMMAND is split like a shell "
                        "word list; a relative program path is looked up from the current "
                        "directory, then from the repository root")
    p.add_argument("--gateway-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for every gateway (repeatable)")
    p.add_argument("--nginx-config", choices=["gateway", "plain"], default="gateway",
                   help="gateway: NGINX also sets X-Forwarded-For/-Proto/-Host and a request id "
                        "both ways, as the gateway does (default); plain: bare pass-through")
    p.add_argument("--path", default="/pets/1", help="request path (default %(default)s)")
    p.add_argument("--body", metavar="FILE", default=None,
                   help="send every request as a POST of this file's content, as application/json")
    p.add_argument("--header", action="append", default=[], metavar="'Name: value'",
                   help="request header passed to wrk -H (repeatable)")
    p.add_argument("--jwks", type=Path, default=None, metavar="FILE",
                   help="serve FILE as a JWKS from the upstream and point the gateways' "
                        "JWKS_URL at it (for routes that need a JWT; pass the token with --header)")
    p.add_argument("--rounds", type=int, default=5, help="rounds (default %(default)s)")
    p.add_argument("--duration", type=int, default=5, help="seconds per measurement (default %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up seconds before each measurement (default %(default)s)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default %(default)s)")
    p.add_argument("--order", choices=("rotate", "shuffle"), default="rotate",
                   help="target order per round: fixed order rotated by one each round, "
                        "or shuffled (default %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="seed for --order shuffle")
    p.add_argument("--json", metavar="FILE", help="write all raw per-round figures to FILE")
    p.add_argument("--load-cpu", default="0", help="CPU for wrk and the upstream (default %(default)s)")
    p.add_argument("--proxy-cpu", default="1", help="CPU for the proxy under test (default %(default)s)")
    p.add_argument("--nginx", default="/usr/sbin/nginx", help="NGINX binary (default %(default)s)")
    p.add_argument("--wrk", default="wrk", help="wrk binary (default %(default)s)")
    p.add_argument("--start-timeout", type=float, default=30.0,
                   help="seconds to wait for a process to accept connections (default %(default)s)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.connections < 1 or args.warmup < 0:
        p.error("--rounds, --duration and --connections must be >= 1, --warmup >= 0")
    for kv in args.gateway_env:
        if "=" not in kv or kv.startswith("="):
            p.error(f"--gateway-env expects KEY=VALUE, got {kv!r}")
    for h in args.header:
        if ":" not in h:
            p.error(f"--header expects 'Name: value', got {h!r}")
    if not args.path.startswith("/"):
        p.error("--path must start with '/'")
    if args.jwks is not None:
        if not args.jwks.is_file():
            p.error(f"--jwks: no such file {args.jwks}")
        args.jwks = str(args.jwks.resolve())
    return args


def resolve_gateways(specs: list[str]) -> list[tuple[str, list[str]]]:
    out, seen = [], set()
    for spec in specs:
        name, sep, cmd = spec.partition("=")
        name = name.strip()
        if not sep or not name or not cmd.strip():
            raise BenchError(f"--gateway expects NAME=COMMAND, got {spec!r}")
        if name in RESERVED_NAMES or name in seen:
            raise BenchError(f"gateway name {name!r} is reserved or used twice")
        seen.add(name)
        argv = shlex.split(cmd)
        prog = argv[0]
        if "/" in prog and not os.path.isabs(prog) and not os.path.exists(prog):
            candidate = REPO_ROOT / prog
            if candidate.exists():
                prog = str(candidate)
        if "/" in prog:
            if not os.path.isfile(prog):
                raise BenchError(f"gateway {name}: {argv[0]} not found (build it first, e.g. "
                                 f"`cargo build --release -p petstore-gateway`)")
            if not os.access(prog, os.X_OK):
                raise BenchError(f"gateway {name}: {argv[0]} is not executable")
            prog = os.path.abspath(prog)
        elif shutil.which(prog) is None:
            raise BenchError(f"gateway {name}: {prog} not found on PATH")
        out.append((name, [prog, *argv[1:]]))
    return out


def check_tools(args) -> None:
    for tool in ("taskset", args.wrk):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found (apt-get install -y wrk util-linux)")
    if not os.access(args.nginx, os.X_OK):
        raise BenchError(f"{args.nginx} not found (apt-get install -y nginx)")
    allowed = os.sched_getaffinity(0)
    for c in (args.load_cpu, args.proxy_cpu):
        if not c.isdigit() or int(c) not in allowed:
            raise BenchError(f"CPU {c} is not available to this process (have {sorted(allowed)})")
    if args.load_cpu == args.proxy_cpu:
        log("warning: load generator and proxy share a CPU; ratios will mean little")


def tool_version(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        check_tools(args)
        gateways = resolve_gateways(args.gateway)
    except BenchError as e:
        log(f"error: {e}")
        return 2

    # Keep this (mostly idle) harness off the proxy's CPU.
    try:
        os.sched_setaffinity(0, {int(args.load_cpu)})
    except OSError:
        pass

    h = Harness(args)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    # Install explicitly: a shell may have started us with SIGINT ignored, and
    # wrk stops early on SIGINT, which must never pass for a finished run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    started = _dt.datetime.now(_dt.timezone.utc)
    try:
        up_port = free_port()
        log(f"starting upstream nginx on 127.0.0.1:{up_port} (CPU {args.load_cpu})")
        upstream = h.start_nginx("upstream", upstream_conf(h.tmp / "upstream", up_port, args.jwks),
                                 up_port, args.load_cpu)

        # name -> (port, pid to measure or None)
        targets: dict[str, tuple[int, int | None]] = {"direct": (up_port, None)}
        for name in ("nginx", "nginx-b"):
            port = free_port()
            log(f"starting {name} on 127.0.0.1:{port} (CPU {args.proxy_cpu})")
            p = h.start_nginx(name, proxy_conf(h.tmp / name, port, up_port, args.nginx_config), port, args.proxy_cpu)
            targets[name] = (port, p.pid)
        for name, cmd in gateways:
            port, admin = free_port(), free_port()
            while admin == port:
                admin = free_port()
            log(f"starting gateway {name} on 127.0.0.1:{port} (admin {admin}, CPU {args.proxy_cpu}): "
                f"{shlex.join(cmd)}")
            p = h.start_gateway(name, cmd, port, admin, up_port, args.proxy_cpu)
            targets[name] = (port, p.pid)

        names = list(targets)
        pre = {}
        for name in names:
            pre[name] = preflight(targets[name][0], args.path, args.header,
                                  Path(args.body).read_text() if args.body else None)
            st, body = pre[name]
            log(f"preflight {name}: {st if st is not None else 'no response'} {body[:80]!r}")

        rng = random.Random(args.seed)
        rounds: list[dict] = []
        orders: list[list[str]] = []
        for rnd in range(args.rounds):
            if args.order == "shuffle":
                order = names[:]
                rng.shuffle(order)
            else:
                k = rnd % len(names)
                order = names[k:] + names[:k]
            orders.append(order)
            results = {}
            for name in order:
                port, pid = targets[name]
                r = h.measure(port, pid)
                h.check_alive()
                results[name] = r
                log(f"round {rnd + 1}/{args.rounds} {name:<10} {r['rps']:>10,.0f} req/s  "
                    f"cpu {fmt(r['cpu_us_per_req'], 2):>6} us/req  "
                    f"p50 {r['latency_us']['50']:,.0f} us  p99 {r['latency_us']['99']:,.0f} us"
                    + (f"  ERRORS {r['errors']}" if r["errors"] else ""))
            rounds.append(results)

        summary = summarise(names, rounds)
        print_table(args, names, summary, pre)

        if args.json:
            doc = {
                "started_utc": started.isoformat(),
                "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                "config": {k: v for k, v in vars(args).items()},
                "clk_tck": CLK_TCK,
                "host": {"kernel": platform.release(), "machine": platform.machine(),
                         "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
                "tools": {"nginx": tool_version([args.nginx, "-v"]),
                          "wrk": tool_version([args.wrk, "-v"])},
                "targets": {n: {"port": targets[n][0], "measured_pid": targets[n][1],
                                "command": dict(gateways).get(n)} for n in names},
                "preflight": {n: {"status": pre[n][0], "body": pre[n][1]} for n in names},
                "orders": orders,
                "rounds": rounds,
                "summary": summary,
            }
            path = Path(args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc, indent=2) + "\n")
            log(f"raw figures written to {path}")
        return 0
    except BenchError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        h.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
