"""``wasmlab advise`` end to end: the bar's command, its flags re-run by other commands, and the goals it cannot meet."""

import json

import pytest

from tests.e2e.test_cli import wasmlab

GiB = 1 << 30
QUICK = ("--budget-s", "6", "--requests", "1000", "--repeats", "2")


@pytest.fixture(scope="module")
def advice(tmp_path_factory):
    folder = tmp_path_factory.mktemp("advise")
    plot = folder / "front.png"
    done = wasmlab("advise", "--workload", "dirty-memory:kib=64", "--concurrency", "2", "--p99-us", "20", "--address-space", "8GiB",
                   "--format", "json", "--plot", str(plot), "--out", str(folder / "out"), *QUICK)
    return done, plot


@pytest.mark.timing  # advice measured against a 20 µs target: alone, not beside other tests
def test_the_advice_carries_flags_and_measured_figures_within_the_budget(advice):
    done, plot = advice
    # A shared two-core machine can be too slow for 20 µs; then the advisor must say so in one line, with exit status 1.
    assert done.returncode in (0, 1), done.stderr
    data = json.loads(done.stdout)
    if done.returncode == 1:
        assert not data["feasible"] and done.stderr.strip().count("\n") == 0 and "p99 target 20 µs not met" in done.stderr
        pytest.skip(f"this machine could not meet 20 µs: {data['reason']}")
    for key in ("flags", "p99_us", "rss_bytes", "address_space_bytes", "why", "snippets", "exhaustion", "metadata"):
        assert data[key] is not None, key
    # Every confirmation run met 20 µs; later runs of the same settings may not all (then the advice says so).
    assert data["p99_us"] <= 20 and data["address_space_bytes"] <= 8 * GiB
    assert data["target_met_in_every_run"] == (data["p99_us_worst"] <= 20) and (data["warning"] is None) == data["target_met_in_every_run"]
    # 8 GiB cannot hold two 4 GiB slots with their guards: the advice must have found a smaller layout.
    assert any(f.startswith("memory_reservation=") for f in data["flags"])
    assert data["format_version"] == 1 and data["metadata"]["wasmtime_version"].startswith("50.")
    assert plot.stat().st_size > 10_000
    # The claim comes from its own runs, after the choice: the worst of them, their median beside it.
    claimed = [r["latency_us_p99"] for r in data["runs"] if r["stage"] == "claim"]
    assert len(claimed) == data["claim"]["runs"] == 5 and data["claim"]["p99_us"] == max(claimed) == data["p99_us_worst"]
    assert data["p99_us"] == sorted(claimed)[2] and data["runs"][-1]["stage"] == "exhaustion"
    kept = plot.parent / "out"
    assert json.loads((kept / "metadata.json").read_text())["partial"] is False
    assert json.loads((kept / "advice.json").read_text())["claim"] == data["claim"]


@pytest.mark.timing  # advice measured against a 20 µs target: alone, not beside other tests
def test_its_flags_run_unchanged_in_concurrency_and_reproduce_with_the_same_reservation(advice):
    done, _ = advice
    if done.returncode != 0:
        pytest.skip("no advice on this machine (see the test above)")
    data = json.loads(done.stdout)
    again = wasmlab("concurrency", "--threads", "2", *data["flags"], "--requests", "2000", "--repeats", "1", "--format", "json")
    assert again.returncode == 0, again.stderr
    row = json.loads(again.stdout)["results"][0]
    assert row["failed_requests"] == 0 and row["address_space_bytes"] <= 8 * GiB
    assert abs(row["address_space_bytes"] - data["address_space_bytes"]) <= 0.1 * data["address_space_bytes"] + (1 << 20)
    same = wasmlab("reproduce", *data["flags"], "--requests", "50", "--repeats", "1", "--warmup", "5", "--no-save")
    assert same.returncode == 0, same.stderr


@pytest.mark.parametrize("args,constraint", [
    (("--p99-us", "0.5"), "p99 target 0.5 µs not met: best "),
    (("--p99-us", "20", "--address-space", "1MiB"), "address space 1 MiB leaves no room for a pool of 2 slot(s)"),
    (("--p99-us", "20", "--address-space", "64KiB"), "address space 64 KiB is below what 2 concurrent request(s) reserve"),
])
def test_a_goal_nothing_meets_exits_1_with_one_line_naming_the_constraint(args, constraint):
    done = wasmlab("advise", "--workload", "dirty-memory:kib=64", "--concurrency", "2", *args, *QUICK)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and constraint in lines[0] and "Traceback" not in done.stderr


@pytest.mark.parametrize("args,message", [
    (("--concurrency", "0", "--p99-us", "20"), "concurrency = 0 is out of range"),
    (("--concurrency", "2", "--p99-us", "20", "--call-path", "api"), "call path 'api' is not allowed for advise"),
    (("--concurrency", "2", "--p99-us", "20", "--address-space", "lots"), "--address-space 'lots' is not a size"),
    (("--concurrency", "2", "--p99-us", "20", "--target-release", "7"), "7"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    done = wasmlab("advise", *args, "--budget-s", "1")
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.timing  # a p99 of 1.5 µs that only reuse meets: measured alone
def test_allow_reuse_recommends_reuse_for_a_pure_guest_and_refuses_a_guest_that_carries_state():
    """seed keeps nothing between requests: reuse meets 1.5 µs and the advice says how many reused requests it checked.
    fresh returns what an earlier request left: every reuse candidate carries state over, so none is recommended."""
    pure = wasmlab("advise", "--workload", "seed", "--concurrency", "2", "--p99-us", "1.5", "--allow-reuse", "--format", "json", *QUICK)
    assert pure.returncode == 0, pure.stderr
    data = json.loads(pure.stdout)
    assert data["recommended"]["candidate"]["reuse"] > 1 and data["recommended"]["carried_over_requests"] == 0
    assert data["recommended"]["reused_requests"] > 0 and any("+reuse" in f for f in data["flags"])
    stateful = wasmlab("advise", "--workload", "fresh", "--concurrency", "2", "--p99-us", "1.5", "--allow-reuse", *QUICK)
    assert stateful.returncode == 1 and stateful.stderr.strip().count("\n") == 0, stateful.stderr
    assert "met only with instance reuse that carried state over" in stateful.stderr
