#!/usr/bin/env python3
"""Reads a Prometheus exposition on standard input and parses it with the reference parser
of the Prometheus Python client (PyPI `prometheus_client`), an implementation independent of
the gateway's. Prints the names of its metric families as a JSON list, in the order read.

With `--openmetrics` the input must be OpenMetrics 1.0 (the client's OpenMetrics parser,
which also requires the closing `# EOF`); without it, the text format 0.0.4.

Exit status: 0 when the exposition parses, 1 when it does not (the parser's message goes to
standard error), 2 when prometheus_client is not installed.
"""

import json
import sys


def main() -> int:
    openmetrics = "--openmetrics" in sys.argv[1:]
    try:
        if openmetrics:
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
        else:
            from prometheus_client.parser import text_string_to_metric_families
    except ImportError as e:
        print(
            f"parse_metrics.py: {e}; install it: python3 -m pip install prometheus_client",
            file=sys.stderr,
        )
        return 2
    text = sys.stdin.read()
    try:
        # The parsers are generators: errors surface while iterating, so every family and
        # every sample is read before anything is printed.
        names = []
        for family in text_string_to_metric_families(text):
            list(family.samples)
            names.append(family.name)
    except Exception as e:  # the parsers raise ValueError and others on bad input
        print(f"parse_metrics.py: the exposition does not parse: {e!r}", file=sys.stderr)
        return 1
    print(json.dumps(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
