"""Wherever a speedup is shown (text, JSON, plots, a sweep's speedups) it names the baseline it is over, that baseline
is the variant's own call path's, and a path without one says so; then a real run on the lean and native paths."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from tests.measure.test_own_baseline import LEAN_SPEEDUP, NATIVE_OVER_LEAN, NATIVE_SPEEDUP, known_summary, measurement_of  # noqa: E402
from wasmlab.cli import main  # noqa: E402
from wasmlab.measure.measurement import Measurement  # noqa: E402
from wasmlab.report import plots, text  # noqa: E402
from wasmlab.report.sweeps import point_speedups, speedup_figure  # noqa: E402


def test_the_variants_table_names_each_speedup_s_baseline_why_one_is_missing_and_the_path_ratio():
    shown = text.variants_table(measurement_of(known_summary()))
    row = next(line for line in shown.splitlines() if line.strip().startswith("pooled+cached@native"))
    assert f"{NATIVE_SPEEDUP:.2f}" in row and row.rstrip().endswith("baseline@native")
    assert "No speedup for pooled+cached@api: no baseline on the api path in this run" in shown
    assert "over the baseline of its own call path" in shown
    ratios = shown[shown.index("native_over_lean per composition"):].splitlines()
    assert any(line.strip().startswith("pooled+cached: ") and f", {NATIVE_OVER_LEAN:.2f} (" in line for line in ratios), ratios


def test_the_plot_labels_each_bar_with_its_baseline_and_a_missing_one_with_its_reason():
    summary = known_summary()
    samples = pd.DataFrame([{"variant": v, "latency_ns": 1000 * float(t)} for v, t in zip(summary["variant"], summary["latency_us_mean"])])
    meta = {"parameters": {"call_path": "lean"}, "requests": 1000, "repeats": 5, "warmup": 0, "workload": "known",
            "wasmtime_version": "test", "cpu_model": "test"}
    figure = plots.latency_and_speedup(Measurement(summary, samples, pd.DataFrame(), meta))
    labels = [t.get_text().strip() for t in figure.axes[1].texts]
    assert f"{NATIVE_SPEEDUP:.1f}x over baseline@native" in labels and f"{LEAN_SPEEDUP:.1f}x over baseline" in labels
    assert "no speedup: no baseline on the api path in this run" in labels
    assert "its own call path's baseline" in figure.axes[1].get_xlabel()


def test_a_sweep_s_speedups_are_over_each_path_s_own_baseline(tmp_path):
    points = [known_summary().assign(point_id=f"p{i}", param_slots=slots) for i, slots in enumerate((4, 20))]
    pd.concat(points).to_parquet(tmp_path / "results.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps({"points": {}}))
    speedups = point_speedups(tmp_path).set_index(["point_id", "variant"])
    assert speedups.loc[("p1", "pooled+cached@native"), "speedup"] == pytest.approx(NATIVE_SPEEDUP)
    assert speedups.loc[("p1", "pooled+cached@native"), "speedup_over"] == "baseline@native"
    assert speedups.loc[("p0", "pooled+cached"), "speedup"] == pytest.approx(LEAN_SPEEDUP)
    assert np.isnan(speedups.loc[("p0", "pooled+cached@api"), "speedup"])
    figure = speedup_figure(speedups.reset_index(), ["param_slots"])
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["native path: over baseline@native", "api path: no baseline on this path", "lean path: over baseline"]
    assert "pooled+cached@api: no baseline on the api path" in figure.get_suptitle()


def test_a_real_lean_and_native_run_takes_each_native_speedup_over_baseline_at_native(tmp_path):
    out = tmp_path / "run"
    done = CliRunner().invoke(main, ["reproduce", "--call-path", "lean,native", "--requests", "200", "--repeats", "3", "--warmup", "20",
                                     "--slots", "4", "--out", str(out), "--format", "json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout[done.stdout.index("{"):])
    summary = Measurement.load(out).summary.set_index(["variant", "repetition"])["total_ms"]
    native = [v for v in data["variants"] if v.endswith("@native")]
    assert len(native) == 5
    for variant in native:
        # The ratio computed here from the saved per-repetition totals, not through the lab's own pairing.
        own = float(np.exp(np.mean(np.log(summary["baseline@native"] / summary[variant]))))
        row = data["variants"][variant]
        assert row["speedup"] == pytest.approx(own, rel=1e-9) and row["speedup_over"] == "baseline@native"
    assert data["speedup_over"] == "baseline" and data["variants"]["pooled+cached"]["speedup_over"] == "baseline"
    assert data["native_over_lean"]["variant"] == "pooled+cached"
    per_composition = data["path_ratios"]["native_over_lean"]
    assert set(per_composition) == {"baseline", "cached", "pooled", "pooled+cached", "pooled+cached+pre"}
    assert per_composition["pooled+cached"]["ratio"] == data["native_over_lean"]["ratio"]
    assert all(r["ci95_low"] <= r["ratio"] <= r["ci95_high"] for r in per_composition.values())
