"""The advisor and Wizer snapshots: for guests that name their start-up (``init``), serving from a snapshot is a knob it
tries from the first trials on, shows with its effect, and writes into the host's settings; for others it is no choice."""

from wasmlab.experiments.advisor.goal import Goal
from wasmlab.experiments.advisor.needs import ServingNeeds
from wasmlab.experiments.advisor.search import all_have_init, starting_points
from wasmlab.experiments.advisor.snippets import release_symbols, rust
from wasmlab.experiments.advisor.space import Candidate, search_space

NEEDS = ServingNeeds(("startup-heavy:kib=64",), 131072, 131072, 0, 0, 1, 1)


def test_a_snapshot_candidate_is_a_variant_the_lab_takes_and_says_so():
    snap = Candidate("pooling", 2, snapshot=True)
    assert snap.variant == "pooled+cached+snapshot" and Candidate("on-demand", 0, snapshot=True, reuse=4).variant == "cached+snapshot+reuse4"
    assert "Wizer snapshot" in snap.label(NEEDS)
    release, has_symbol = release_symbols()
    assert "wizer --init-func" in rust(snap, NEEDS, release, has_symbol)
    assert "wizer" not in rust(Candidate("pooling", 2), NEEDS, release, has_symbol)


def test_snapshots_are_a_choice_only_for_guests_with_a_start_up_and_are_tried_first():
    assert all_have_init(Goal(("startup-heavy:kib=64",), 1, 50.0))
    assert not all_have_init(Goal(("seed",), 1, 50.0)) and not all_have_init(Goal(("startup-heavy:kib=64", "seed"), 1, 50.0, trace="uniform"))
    assert search_space(NEEDS, 1, 1).snapshot == (False,)
    space = search_space(NEEDS, 1, 1, snapshots=True)
    assert space.snapshot == (False, True)
    firsts = starting_points(space, [(1, "default")], ["default"], Goal(("startup-heavy:kib=64",), 1, 50.0))
    assert [p["snapshot"] for p in firsts].count(True) == 1
    plain = starting_points(search_space(NEEDS, 1, 1), [(1, "default")], ["default"], Goal(("seed",), 1, 50.0))
    assert not any(p["snapshot"] for p in plain)
