#!/usr/bin/env python3
"""User-space instructions per proxied request, gateway against NGINX, under callgrind.

Wall-clock CPU figures (bench/proxy.py) move by several percent between rounds on a
shared two-core machine; instruction counts do not. This tool runs each proxy under
`valgrind --tool=callgrind`, sends it a fixed number of requests over a few keep-alive
connections, and reports (instructions for N2 requests - instructions for N1) / (N2 - N1),
so start-up and shutdown cancel out. It counts user space only: kernel work (the system
calls, which bench/proxy.py shows are on a par with NGINX's) is not in these figures.

    python3 bench/proxy_instructions.py --gateway target/release/petstore-gateway

NGINX is configured as in bench/proxy.py (`--nginx-config gateway` by default: it sets the
same forwarding headers and request id as the gateway does).
"""

import argparse
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy  # noqa: E402  (the sibling benchmark: NGINX configurations and helpers)


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


def load(port: int, path: str, requests: int, headers: dict, body: str | None,
         connections: int = 4) -> None:
    conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(connections)]
    if body is not None:
        headers = dict(headers, **{"Content-Type": "application/json"})
    for i in range(requests):
        c = conns[i % connections]
        c.request("GET" if body is None else "POST", path, body=body, headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"request {i} got {r.status}")


def instructions(argv: list[str], env: dict, port: int, path: str, headers: dict, body: str | None,
                 requests: int, out: Path, stop: int) -> int:
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + argv
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        load(port, path, requests, headers, body)
    finally:
        p.send_signal(stop)
        p.wait(timeout=60)
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


def per_request(argv, env, port, path, headers, body, n1, n2, tmp: Path, stop) -> float:
    a = instructions(argv, env, port, path, headers, body, n1, tmp / "a.out", stop)
    b = instructions(argv, env, port, path, headers, body, n2, tmp / "b.out", stop)
    return (b - a) / (n2 - n1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", required=True, help="gateway binary (release build)")
    ap.add_argument("--path", default="/pets/1")
    ap.add_argument("--nginx-config", choices=["gateway", "plain"], default="gateway")
    ap.add_argument("--requests", type=int, nargs=2, default=[1000, 3000], metavar=("N1", "N2"))
    ap.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                    help="a request header, repeatable (e.g. an Authorization header)")
    ap.add_argument("--jwks", type=Path, metavar="FILE",
                    help="serve FILE as a JWKS from the upstream and point JWKS_URL at it")
    ap.add_argument("--gateway-env", action="append", default=[], metavar="KEY=VALUE",
                    help="added to the gateway's environment, repeatable")
    ap.add_argument("--body", type=Path, metavar="FILE",
                    help="send every request as a POST of FILE, as application/json")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="copy the gateway's callgrind files (a.out: N1 requests, b.out: N2) to DIR, "
                         "for callgrind_annotate")
    args = ap.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    jwks = str(args.jwks.resolve()) if args.jwks else None
    body = args.body.read_text() if args.body else None

    with tempfile.TemporaryDirectory(prefix="gatewayc-insn-") as t:
        tmp = Path(t)
        up_port, nginx_port, gw_port = proxy.free_port(), proxy.free_port(), proxy.free_port()
        (tmp / "up").mkdir()
        (tmp / "up" / "nginx.conf").write_text(proxy.upstream_conf(tmp / "up", up_port, jwks))
        upstream = subprocess.Popen(["nginx", "-c", str(tmp / "up" / "nginx.conf"), "-p", str(tmp / "up")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(up_port)
            (tmp / "px").mkdir()
            conf = proxy.proxy_conf(tmp / "px", nginx_port, up_port, args.nginx_config)
            # One process, so callgrind sees the worker's instructions.
            conf = conf.replace("master_process on;", "master_process off;")
            (tmp / "px" / "nginx.conf").write_text(conf)
            nginx = per_request(["nginx", "-c", str(tmp / "px" / "nginx.conf"), "-p", str(tmp / "px")],
                                dict(os.environ), nginx_port, args.path, headers, body, *args.requests,
                                tmp, signal.SIGQUIT)
            env = dict(os.environ, GATEWAY_LISTEN=f"127.0.0.1:{gw_port}", GATEWAY_WORKERS="1",
                       PETS_URL=f"http://127.0.0.1:{up_port}")
            if jwks:
                env["JWKS_URL"] = f"http://127.0.0.1:{up_port}{proxy.JWKS_PATH}"
            env.update(kv.split("=", 1) for kv in args.gateway_env)
            gateway = per_request([args.gateway], env, gw_port, args.path, headers, body,
                                  *args.requests, tmp, signal.SIGTERM)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for name in ("a.out", "b.out"):
                    shutil.copy(tmp / name, args.keep / f"gateway-{name}")
        finally:
            upstream.send_signal(signal.SIGQUIT)
            upstream.wait(timeout=30)
    print(f"user-space instructions per request ({'GET' if body is None else 'POST'} {args.path}, nginx config {args.nginx_config}):")
    print(f"  nginx    {nginx:10,.0f}")
    print(f"  gateway  {gateway:10,.0f}   ratio {gateway / nginx:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
