"""Runs the public SCIM conformance checkers against a running seatkeeper.

Usage: check.py BASE_URL TOKEN EXPECTED_FAILURES_FILE

- scim2-tester (PyPI): every check of every resource type the server advertises.
- scim-sanity (PyPI): `probe`, the live conformance probe.

A check that fails, or is skipped, and is not listed (with its reason) in EXPECTED_FAILURES_FILE
fails the run: a skip is not a pass. Each checker must also run at least its stated minimum of
checks (MINIMUM below), so that a checker that quietly runs fewer (a new version, a discovery
document it misreads) fails rather than passes. Prints a closing line
`conformance: N passed, M skipped, K failed`.
"""

import json
import subprocess
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

OK = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}

# The fewest checks each checker must pass: what the pinned versions (requirements.txt) run.
MINIMUM = {"scim2-tester": 133, "scim-sanity": 28}


def load_expected(path):
    expected = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, why = line.partition(" -- ")
            expected[name.strip()] = why.strip()
    return expected


def run_scim2_tester(base, token, expected):
    client = SyncSCIMClient(Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30))
    passed, failed, tolerated = 0, [], []
    for r in check_server(client):
        name = f"{r.resource_type or '-'}:{r.title}"
        if r.status in OK:
            passed += 1
            continue
        if name in expected:
            tolerated.append((name, r.status.name, expected[name]))
        else:
            failed.append((name, r.status.name, r.reason))
    return passed, failed, tolerated


def run_scim_sanity(base, token, expected):
    out = subprocess.run(
        [sys.executable, "-m", "scim_sanity", "probe", base, "--token", token, "--json-output", "--i-accept-side-effects"],
        capture_output=True, text=True, timeout=300,
    )
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        return 0, [("scim-sanity", "ERROR", (out.stdout + out.stderr)[-2000:])], []
    passed, failed, tolerated = 0, [], []
    for r in report.get("results", []):
        name = f"sanity:{r.get('name')}"
        status = str(r.get("status", "")).lower()
        if status == "pass":
            passed += 1
        elif name in expected:
            tolerated.append((name, status, expected[name]))
        else:
            failed.append((name, status, r.get("message")))
    return passed, failed, tolerated


def main():
    base, token, expected_file = sys.argv[1], sys.argv[2], sys.argv[3]
    expected = load_expected(expected_file)
    total_passed, total_failed, total_known = 0, 0, 0
    for label, runner in (("scim2-tester", run_scim2_tester), ("scim-sanity", run_scim_sanity)):
        passed, failed, tolerated = runner(base, token, expected)
        if passed < MINIMUM[label]:
            failed.append((f"{label}:minimum", "TOO FEW", f"{passed} checks passed, at least {MINIMUM[label]} expected"))
        print(f"{label}: {passed} checks passed, {len(failed)} failed, {len(tolerated)} known not to apply")
        for name, status, why in tolerated:
            print(f"  known: {name} [{status}] -- {why}")
        for name, status, why in failed:
            print(f"  FAILED: {name} [{status}] -- {why}")
        total_passed += passed
        total_failed += len(failed)
        total_known += len(tolerated)
    print(f"conformance: {total_passed} passed, {total_known} known not to apply, {total_failed} failed")
    sys.exit(1 if total_failed else 0)


if __name__ == "__main__":
    main()
