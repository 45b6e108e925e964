"""The advisor's claim holds when a user checks it: its printed ``wasmlab concurrency`` command, run three times
afterwards in new processes, measures a p99 no more than 1.5x the claimed one.

One direction only: the claim is an upper bound (the worst of its runs), and a re-run on two shared cores may well
come in lower; what must not happen is the issue's 4.5 µs claimed, 13-18 µs re-measured.  The re-run's figure is the
one ``concurrency`` headlines, the median p99 of its runs."""

import json

import pytest

from tests.e2e.test_cli import wasmlab

SLACK = 1.5
RERUNS = 3


@pytest.mark.timing  # a claim re-measured against itself: alone, not beside other tests
def test_three_reruns_of_the_printed_command_confirm_the_claimed_p99():
    advised = wasmlab("advise", "--workload", "dirty-memory:kib=64", "--concurrency", "2", "--p99-us", "50", "--address-space", "8GiB",
                      "--budget-s", "10", "--format", "json")
    assert advised.returncode == 0, advised.stderr
    claim = json.loads(advised.stdout)["claim"]
    assert claim["command"][:2] == ["wasmlab", "concurrency"] and claim["runs"] >= 5 and claim["requests_per_worker"] >= 10_000
    again = []
    for _ in range(RERUNS):
        done = wasmlab(*claim["command"][1:], "--format", "json")
        assert done.returncode == 0, done.stderr
        again.append(json.loads(done.stdout)["results"][0]["latency_us_p99"])
    assert all(p99 <= SLACK * claim["p99_us"] for p99 in again), (
        f"claimed p99 {claim['p99_us']:.2f} µs ({claim['statistic']}); re-runs of {claim['command_text']}: "
        + ", ".join(f"{p:.2f}" for p in again) + " µs")
