"""Sweep specs fuzzed: random YAML text and random specs (grids, zips, lists, unknown parameters, wrong types, empty
grids, huge products, several documents) give validated specs whose points can be listed and checked, or one line that
starts with the spec file: never another exception, never a hang listing a grid of billions of points."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.budget import fuzz
from wasmlab import sweep, sweep_spec
from wasmlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = ["workload", "variants", "requests", "repeats", "warmup", "preset", "slots", "cache_policy", "cache_size",
              "call_path", "phases", "output_dir", "releases", "slotz", "", "1"]
SCALARS = (st.none() | st.booleans() | st.integers(-(1 << 65), 1 << 65) | st.floats() | st.text(max_size=8)
           | st.sampled_from(["seed", "pooled+cached", "lean", "lru", "default", "fresh", "nope"]))
VALUES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=2),
                      max_leaves=6)
AXIS = st.lists(SCALARS, max_size=4) | st.integers(1, 40).flatmap(lambda n: st.lists(st.integers(1, 9), min_size=n, max_size=n)) | VALUES
SECTION = st.dictionaries(st.sampled_from(PARAMETERS), AXIS, max_size=6) | VALUES
SPECS = st.fixed_dictionaries(
    {"name": st.sampled_from(["s", "other"]) | VALUES, "notebook": st.sampled_from(["01_seed_reproduction.ipynb"]) | VALUES},
    optional={"parameters": st.dictionaries(st.sampled_from(PARAMETERS), SCALARS, max_size=4) | VALUES, "grid": SECTION,
              "zip": SECTION, "replicates": st.integers(-2, 1 << 40) | VALUES, "out": VALUES, "description": VALUES,
              "wasmtime_release": st.lists(st.sampled_from([30, "50.0.1", 99, "x"]), max_size=2) | VALUES,
              "gird": VALUES})


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """A notebooks/ folder with 01 in it, and the spec file's place in its sweeps/."""
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks" / "sweeps").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "01_seed_reproduction.ipynb", root / "notebooks")
    return root / "notebooks" / "sweeps" / "spec.yaml"


def specs_or_one_line(path: Path, text: str) -> None:
    """The property: specs whose points list (and the first few check), or one line starting with the spec file."""
    path.write_text(text)
    try:
        for spec in sweep.load_specs(path, out=path.parent / "out"):
            points = spec.points()
            for point in points[:3]:
                sweep_spec.check_point(path, point)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path)), str(exc)


@fuzz(50)
@given(documents=st.lists(SPECS, min_size=1, max_size=2))
@example(documents=[{"name": "s", "notebook": "01_seed_reproduction.ipynb",
                     "grid": {p: list(range(1, 41)) for p in ("requests", "repeats", "warmup", "slots", "cache_size")},
                     "replicates": 1 << 40}])
@example(documents=[{"name": "s", "notebook": "01_seed_reproduction.ipynb"}, ["a list"]])
@example(documents=[{"name": "s", "notebook": "01_seed_reproduction.ipynb", "out": 7}])
@example(documents=[{"name": "s", "notebook": "01_seed_reproduction.ipynb", "grid": {1: [1]}}])
def test_a_random_spec_is_valid_or_one_line(lab, documents):
    specs_or_one_line(lab, yaml.safe_dump_all(documents))


@fuzz(80)
@given(text=st.text(max_size=80) | st.lists(st.sampled_from(
    ["name: s\n", "notebook: 01_seed_reproduction.ipynb\n", "grid: {slots: [1, 2]}\n", "zip: {requests: [1]}\n", "---\n",
     "- x\n", "&a {slots: [1]}\n", "grid: *a\n", "\tgrid:\n", "parameters: {requests: 1e3}\n", "replicates: 0x10\n",
     "out: ~\n", "name: [s]\n", "!!python/object:os.system {}\n"]), max_size=6).map("".join))
@example(text="name: s\nnotebook: 01_seed_reproduction.ipynb\n---\n- x\n")
def test_random_yaml_text_is_a_spec_or_one_line(lab, text):
    specs_or_one_line(lab, text)
