#!/usr/bin/env bash
# The gateway steps of a CI workflow (docs/ci.md), runnable as they are on a laptop:
#
#   docs/ci/gatewayc-ci.sh [-o OUT] [--release] SPEC...
#
# 1. `gatewayc check`: every problem, rustc-style on stderr, and the same findings as a
#    SARIF 2.1.0 log in OUT/gatewayc.sarif (for code scanning), written even when the
#    check fails;
# 2. `gatewayc routes --format json`: the route table in OUT/routes.json;
# 3. `gatewayc build`: the gateway's crate in OUT/gateway, built with cargo in the target
#    directory all gateways share (docs/cli.md#gatewayc-build), the binary in
#    OUT/gateway/target/debug/ (release/ with --release).
#
# The spec files compile into one gateway. OUT is gatewayc-out unless -o says otherwise.
# gatewayc is the one on PATH, or $GATEWAYC. Exit status: 0 when everything passed, 1 when
# the check found errors (OUT/gatewayc.sarif holds them), 2 on a usage error or when
# another step failed.
set -euo pipefail

usage() {
  echo "usage: $0 [-o OUT] [--release] SPEC..." >&2
  exit 2
}

out=gatewayc-out
release=()
specs=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --release) release=(--release); shift ;;
    -h|--help) usage ;;
    -*) echo "$0: unknown option $1" >&2; usage ;;
    *) specs+=("$1"); shift ;;
  esac
done
[ ${#specs[@]} -gt 0 ] || usage
gatewayc=${GATEWAYC:-gatewayc}
command -v "$gatewayc" >/dev/null || { echo "$0: $gatewayc not found (install it, or set GATEWAYC)" >&2; exit 2; }
mkdir -p "$out"

echo "== gatewayc check ${specs[*]}" >&2
status=0
"$gatewayc" check --format sarif "${specs[@]}" >"$out/gatewayc.sarif" || status=$?
if [ "$status" -ne 0 ]; then
  # The SARIF log is for the code scanning upload; the log of the run says it in words.
  "$gatewayc" check "${specs[@]}" || true
  echo "$0: the check failed (exit $status); findings in $out/gatewayc.sarif" >&2
  [ "$status" -eq 1 ] && exit 1
  exit 2
fi
"$gatewayc" check "${specs[@]}"

echo "== gatewayc routes" >&2
"$gatewayc" routes --format json "${specs[@]}" >"$out/routes.json"

echo "== gatewayc build" >&2
# (`${a[@]+"${a[@]}"}`: an empty array under `set -u` in bash before 4.4, as macOS has.)
binary=$("$gatewayc" build "${specs[@]}" -o "$out/gateway" ${release[@]+"${release[@]}"}) || {
  echo "$0: the build failed" >&2
  exit 2
}

echo "findings: $out/gatewayc.sarif" >&2
echo "routes:   $out/routes.json" >&2
echo "binary:   $binary" >&2
