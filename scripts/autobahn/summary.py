#!/usr/bin/env python3
"""Summarises Autobahn|Testsuite reports (index.json) by outcome and by section.

    summary.py [--strict] [--markdown] ROLE=PATH/index.json [ROLE=PATH/index.json ...]

For each role it prints the case count per outcome, a table of sections 1-13 by outcome,
and every case whose outcome is not OK (behavior or close behavior). Exits 1 when a case
FAILED in any role; with --strict also when one is NON-STRICT or UNIMPLEMENTED.
INFORMATIONAL cases never fail the run: Autobahn marks them so whatever the testee does
(7.1.6, 7.13.1, 7.13.2; see docs/conformance.md).
"""
import collections
import json
import os
import sys

OUTCOMES = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
SECTIONS = {
    "1": "framing (text, binary)",
    "2": "pings and pongs",
    "3": "reserved bits",
    "4": "opcodes",
    "5": "fragmentation",
    "6": "UTF-8 handling",
    "7": "close handshake",
    "9": "limits and performance",
    "10": "miscellaneous",
    "12": "compression",
    "13": "compression",
}


def case_key(case):
    return [int(x) for x in case.split(".")]


def outcome(r):
    """One outcome per case: the worse of behavior and close behavior."""
    worst = max(OUTCOMES.index(r["behavior"]), OUTCOMES.index(r["behaviorClose"]))
    return OUTCOMES[worst]


def case_result(index_path, r):
    """The case's own explanation of its outcome, from its report file."""
    try:
        report = json.load(open(os.path.join(os.path.dirname(index_path), r["reportfile"])))
        return f'{report["description"]} -> {report["result"]}'
    except (OSError, KeyError, ValueError):
        return ""


def summarise(role, path, markdown):
    reports = json.load(open(path))
    if len(reports) != 1:
        raise SystemExit(f"{path}: expected one agent, found {sorted(reports)}")
    (agent, results), = reports.items()
    by_section = collections.defaultdict(collections.Counter)
    total = collections.Counter()
    odd = []
    for case, r in sorted(results.items(), key=lambda kv: case_key(kv[0])):
        o = outcome(r)
        by_section[case.split(".")[0]][o] += 1
        total[o] += 1
        if o != "OK":
            odd.append((case, r["behavior"], r["behaviorClose"], case_result(path, r)))
    cols = [o for o in OUTCOMES if total[o]] or ["OK"]
    print(f"== Autobahn, {role} role ({agent}): {len(results)} cases: "
          + ", ".join(f"{total[o]} {o}" for o in cols))
    if markdown:
        print("| section | " + " | ".join(cols) + " |")
        print("|---|" + "---|" * len(cols))
    for sec in sorted(by_section, key=int):
        name = f"{sec} {SECTIONS.get(sec, '')}".strip()
        cells = [str(by_section[sec][o]) for o in cols]
        if markdown:
            print(f"| {name} | " + " | ".join(cells) + " |")
        else:
            print(f"   {name:<28}" + "".join(f"{o}={c:<5}" for o, c in zip(cols, cells)))
    for case, b, bc, result in odd:
        print(f"   {case}: {b} / close {bc}: {result}")
    return total


def main():
    args = sys.argv[1:]
    strict = "--strict" in args
    markdown = "--markdown" in args
    runs = [a for a in args if not a.startswith("--")]
    if not runs:
        raise SystemExit(__doc__)
    bad = []
    for run in runs:
        role, _, path = run.partition("=")
        total = summarise(role, path, markdown)
        if total["FAILED"]:
            bad.append(f"{role}: {total['FAILED']} FAILED")
        if strict and (total["NON-STRICT"] or total["UNIMPLEMENTED"]):
            bad.append(f"{role}: {total['NON-STRICT']} NON-STRICT, "
                       f"{total['UNIMPLEMENTED']} UNIMPLEMENTED (strict)")
    if bad:
        print("autobahn: " + "; ".join(bad))
        sys.exit(1)
    print("autobahn: no case FAILED" + (" or NON-STRICT" if strict else ""))


if __name__ == "__main__":
    main()
