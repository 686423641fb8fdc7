"""Compare two junit XML reports test by test; exit 1 if any outcome differs."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter

_STATES = {"failure": "failed", "error": "error", "skipped": "skipped"}


def outcomes(path: str) -> dict[str, str]:
    """test id -> passed / failed / error / skipped (joined when several)."""
    out: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        states = [_STATES[c.tag] for c in case if c.tag in _STATES] or ["passed"]
        out[test] = "+".join(sorted({*out.get(test, "").split("+"), *states} - {""}))
    return out


def main() -> int:
    """Print both totals and every differing test."""
    bare, traced = outcomes(sys.argv[1]), outcomes(sys.argv[2])
    for name, result in (("bare", bare), ("instrumented", traced)):
        print(name, len(result), dict(Counter(result.values())))
    differing = sorted(
        t for t in bare.keys() | traced.keys() if bare.get(t) != traced.get(t)
    )
    print("differing:", len(differing))
    for test in differing:
        print(f"  {test}: bare={bare.get(test)} instrumented={traced.get(test)}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
