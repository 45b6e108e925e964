"""The sweep report page: its headline reads the best speedup against the seed's 59x, its tables name their columns
and carry intervals, its chart keeps one colour per composition; built from the real seed sweep shipped in
data/results/reference/seed-sweep (no measurement here)."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from wasmlab.report import page_format, sweep_page, sweeps, variant_style  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEED_SWEEP = ROOT / "data" / "results" / "reference" / "seed-sweep"


class _Text(HTMLParser):
    """The text a reader sees (no attributes, no style)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag == "style"

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


@pytest.fixture(scope="module")
def seed_page(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("seed") / "seed-sweep"
    shutil.copytree(SEED_SWEEP, folder)
    page = sweep_page.write_report(folder, folder / "report")
    return page, page.read_text(encoding="utf-8")


def test_the_page_opens_with_the_measured_speedup_against_the_seeds_59x(seed_page):
    _, html = seed_page
    text = visible_text(html)
    headline = re.search(r'<section id="headline">(.*?)</section>', html, re.S)
    assert headline and text.index("served a request") < text.index("Speedups per point")
    # The seed sweep's quoted point is its seed settings (20 slots, cache 16): pooled+cached+pre there, 70.4x (67.2-73.7).
    assert "pooled+cached+pre served a request 70.4x (67.2-73.7) faster than baseline" in headline.group(1)
    assert "claimed 59x" in headline.group(1) and "the seed&#x27;s 59x lies below the interval" in headline.group(1)
    assert "slots=20, cache_size=16" in headline.group(1)


def test_tables_have_named_columns_intervals_and_no_pandas_leftovers(seed_page):
    _, html = seed_page
    text = visible_text(html)
    for raw in ("ci95_low", "param_slots", "latency_us_mean", "speedup_over", "Unnamed", "NaN"):
        assert raw not in text, raw
    assert "Mean latency" in text and "lean path, over baseline" in text
    assert re.search(r"\d+\.\d+ µs \(\d+\.\d+-\d+\.\d+\)", text)  # "4.53 µs (4.41-4.66)"
    assert re.search(r"\d+(\.\d+)?x \(\d+(\.\d+)?-\d+(\.\d+)?\)", text)
    assert "<table" in html and not re.search(r"<th>\s*\d+\s*</th>", html)  # no index column


def test_figures_are_files_beside_the_page_and_embedded_in_it(seed_page):
    page, html = seed_page
    for name in ("speedups.png", "heatmap.png"):
        assert (page.parent / name).stat().st_size > 5_000
        assert f'href="{name}"' in html
    assert html.count("data:image/png;base64,") == 2


def test_how_it_was_measured_is_folded_and_complete(seed_page):
    _, html = seed_page
    details = html[html.index('<h2 id="measured">'):]
    assert "<details>" in details and '<div class="box">' in details  # the per-point table scrolls in its own box
    for fact in ("Repetitions", "5 repetition(s) of 1000 timed requests per variant, after 200 untimed warm-up",
                 "Intervals", "Student-t", "Checked against", "Machine", "AMD EPYC", "Versions", "wasmtime 50.0.1"):
        assert fact in details, fact


def _speedups(order: list[str]) -> pd.DataFrame:
    rows = []
    for point, slots in (("a", 4), ("b", 20)):
        for variant in order:
            over = "baseline@native" if variant.endswith("@native") else "baseline"
            rows.append({"point_id": point, "variant": variant, "call_path": variant_style.call_path(variant, "lean"),
                         "speedup": 1.0 if variant == over else 60.0, "ci95_low": 1.0 if variant == over else 50.0,
                         "ci95_high": 1.0 if variant == over else 70.0, "repetitions": 5, "speedup_over": over,
                         "speedup_note": "", "latency_us_mean": 5.0, "param_slots": slots})
    return pd.DataFrame(rows)


def test_each_composition_keeps_its_colour_and_each_path_its_panel_whatever_the_run_order():
    names = ["pooled+cached@native", "baseline", "cached", "baseline@native", "pooled+cached", "cached@native"]
    colours = []
    for order in (names, list(reversed(names))):
        fig = sweeps.speedup_figure(_speedups(order), ["param_slots"])
        axes = [ax for ax in fig.axes if ax.get_title()]
        assert [ax.get_title() for ax in axes] == ["native path: over baseline@native", "lean path: over baseline"]
        # Two compositions x two points per panel: a row each, the figure no taller than its rows need.
        assert len(axes[0].get_yticks()) == 4 and fig.get_figheight() <= 0.3 * 4 + 2
        colours.append([matplotlib.colors.to_hex(line.get_color()) for line in axes[0].lines if line.get_marker() == "o"])
    assert colours[0] == colours[1] == [variant_style.COLOURS["cached"]] * 2 + [variant_style.COLOURS["pooled+cached"]] * 2


@pytest.mark.parametrize(("low", "high", "verdict"), [(50.0, 70.0, "inside"), (65.0, 80.0, "below"), (30.0, 40.0, "above"),
                                                      (float("nan"), float("nan"), "cannot say")])
def test_the_headline_places_59x_against_the_interval(low, high, verdict):
    frame = _speedups(["baseline", "pooled+cached"])
    frame.loc[frame["variant"] == "pooled+cached", ["ci95_low", "ci95_high"]] = [low, high]
    html = sweep_page.headline_html(frame, ["param_slots"])
    assert verdict in html and "pooled+cached served a request 60.0x" in html


def test_intervals_read_as_a_person_writes_them():
    assert page_format.interval(6.3, 6.1, 6.5, " µs") == "6.30 µs (6.10-6.50)"
    assert page_format.speedup(113.3, 110.1, 116.6) == "113x (110-117)"
    assert page_format.speedup(1.0, float("nan"), float("nan")) == "1.00x (no interval)"
    assert page_format.interval(29.9, 7.5e-8, 1.2e10, " µs") == "29.9 µs (7.5e-08-1.2e+10)"
