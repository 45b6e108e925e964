"""Interactive exploration in JupyterLab: widgets for the knobs, a Run button, an accumulating comparison.

Each press of Run measures the chosen variant side by side with ``baseline`` (so every row
has a speedup measured in the same run) and adds both to the comparison; Clear empties it.
A bad knob shows the lab's one-line error under the controls and leaves earlier results
on screen.
"""

from __future__ import annotations

import html
import io
import warnings
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import wasmtime
from IPython.display import Image
from matplotlib.figure import Figure

from wasmlab.config import CACHE_POLICIES, DEFAULT_SLOTS, parse_size
from wasmlab.errors import WasmlabError
from wasmlab.host.callpaths import call_paths
from wasmlab.host.runtime_axis import WASMTIME, runtime_names
from wasmlab.host.variant import NAMED_VARIANTS
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.scenario import Scenario
from wasmlab.measure.scenario import run as run_scenario
from wasmlab.report import page_format
from wasmlab.report import text as report

WORKLOADS = ("seed", "compile-heavy:functions=200", "data-heavy:kib=256", "dirty-memory:kib=256")
REFERENCE = "baseline"
_TABLE_STYLE = "<style>.wasmlab-table th, .wasmlab-table td {padding: 2px 12px; text-align: right}</style>"


def comparison_table(runs: list[tuple[str, Measurement]]) -> pd.DataFrame:
    """One row per (run, variant): mean, p50, p99 in µs and the speedup over the baseline of that variant's own call path
    in that run (``over`` names it)."""
    rows = []
    for label, measurement in runs:
        table = measurement.variants(REFERENCE)
        for row in table.to_dict("records"):
            rows.append(
                {
                    "run": label,
                    "variant": row["variant"],
                    "mean_us": row["latency_us_mean"],
                    "p50_us": row["latency_us_p50"],
                    "p99_us": row["latency_us_p99"],
                    "speedup": row.get("speedup", float("nan")),
                    "speedup_ci_low": row.get("speedup_ci_low", float("nan")),
                    "speedup_ci_high": row.get("speedup_ci_high", float("nan")),
                    "over": row.get("speedup_over") or "",
                    # Instance reuse's isolation price: reused requests whose results differed from a fresh instance's.
                    "carried_over": _carried_text(row),
                }
            )
    return pd.DataFrame(rows, columns=["run", "variant", "mean_us", "p50_us", "p99_us", "speedup", "speedup_ci_low",
                                       "speedup_ci_high", "over", "carried_over"])


def speedup_text(row: dict[str, Any]) -> str:
    """A speedup with its 95% interval over repetitions (``12.3x (10.1-14.8)``); the reference itself says so."""
    if row["variant"] == row["over"] or (not row["over"] and row["speedup"] == 1.0):
        return "1x (reference)"
    return page_format.speedup(row["speedup"], row["speedup_ci_low"], row["speedup_ci_high"])


def _carried_text(row: dict[str, Any]) -> str:
    reused = row.get("reused_requests")
    if reused is None or reused != reused or not reused:  # absent, nan, or no request reused
        return ""
    return f"{int(row.get('carried_over_requests') or 0)} of {int(reused)}"


def comparison_figure(runs: list[tuple[str, Measurement]]) -> Figure:
    """Latency per request of every measured (run, variant), log scale."""
    frames = [
        m.samples.assign(series=lambda d, label=label: label + " · " + d["variant"], latency_us=lambda d: d["latency_ns"] / 1000)
        for label, m in runs
    ]
    data = pd.concat(frames, ignore_index=True)
    order = list(dict.fromkeys(data["series"]))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(order) + 1.6))
    sns.boxenplot(data=data, x="latency_us", y="series", order=order, log_scale=True, ax=ax, hue="series",
                  palette="viridis", legend=False, k_depth="proportion")
    ax.set_xlabel("latency per request (µs, log scale)")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def error_html(kind: str, message: str) -> str:
    """The lab's one-line error as the command line prints it (``wasmlab: error: ...``), in red under the controls."""
    return f"<span style='color:#b00020'>wasmlab: {kind}: {html.escape(message)}</span>"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


class Explorer:
    """The controls, the Run and Clear buttons, and the accumulating results."""

    def __init__(self, requests: int = 300, repeats: int = 3, warmup: int = 50, variant: str = "pooled+cached") -> None:
        style = {"description_width": "130px"}
        self.workload = widgets.Combobox(value="seed", options=list(WORKLOADS), description="workload", ensure_option=False, style=style)
        self.variant = widgets.Dropdown(options=list(NAMED_VARIANTS), value=variant, description="variant", style=style)
        self.call_path = widgets.ToggleButtons(options=list(call_paths()), value="lean", description="call path", style=style)
        # The runtime axis: wasmtime (on the call path above), another runtime alone or beside wasmtime, or all of them.
        names = runtime_names()
        others = [n for n in names if n != WASMTIME]
        choices = [*names, *(f"{WASMTIME},{n}" for n in others), *([",".join(names)] if len(others) > 1 else [])]
        self.runtime = widgets.Dropdown(options=choices, value=WASMTIME, description="runtime", style=style)
        self.slots = widgets.IntText(value=DEFAULT_SLOTS, description="pool slots", style=style)
        self.max_memory_size = widgets.Text(value="default", description="max memory size", style=style,
                                            placeholder="default, 65536, 10MiB")
        self.cache_policy = widgets.Dropdown(options=list(CACHE_POLICIES), value="lru", description="cache policy", style=style)
        self.cache_size = widgets.IntText(value=16, description="cache size", style=style)
        # +reuseN: 1 is a fresh instance per request; N > 1 lets one instance serve N requests in a row.
        self.reuse = widgets.IntText(value=1, description="instance reuse", tooltip="requests each instance serves (+reuseN)", style=style)
        self.requests = widgets.IntText(value=requests, description="requests", style=style)
        self.repeats = repeats
        self.warmup = warmup
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="idle")
        self.error = widgets.HTML()
        self.error.add_class("wasmlab-error")
        self.table = widgets.HTML()
        self.table.add_class("wasmlab-table")
        self.figure = widgets.Output()
        self.figure.add_class("wasmlab-figure")
        self.metadata = widgets.HTML()
        self.metadata.add_class("wasmlab-metadata")
        self.runs: list[tuple[str, Measurement]] = []
        self.run_button.on_click(lambda _: self.run())
        self.clear_button.on_click(lambda _: self.clear())

    def scenario(self) -> Scenario:
        """The scenario the controls describe; raises the lab's error for a bad knob."""
        variant = self.variant.value + (f"+reuse{self.reuse.value}" if self.reuse.value != 1 else "")
        pool: dict[str, Any] = {}
        if self.max_memory_size.value.strip().lower() not in ("", "default"):
            pool["max_memory_size"] = parse_size(self.max_memory_size.value, "max memory size")
        return Scenario(
            workload=self.workload.value.strip(),
            variants=(REFERENCE,) if variant == REFERENCE else (REFERENCE, variant),
            call_path=self.call_path.value,
            runtime=self.runtime.value,
            requests=self.requests.value,
            repeats=self.repeats,
            warmup=self.warmup,
            slots=self.slots.value,
            pool=pool,
            cache_policy=self.cache_policy.value,
            cache_size=self.cache_size.value,
        )

    def run(self) -> Measurement | None:
        """Measure the current knobs and add them to the comparison; on a bad knob, show the error."""
        self.error.value = ""
        try:
            scenario = self.scenario()
            self.progress.max = scenario.repeats * len(scenario.variants)
            self.progress.value = 0
            self.progress.description = "measuring"
            self.run_button.disabled = True

            def step(variant: str, rep: int, total: int) -> None:
                self.progress.value += 1

            with warnings.catch_warnings():
                # A busy machine is reported in the metadata pane, not as a stderr warning.
                warnings.simplefilter("ignore", RuntimeWarning)
                measurement = run_scenario(scenario, step)
        except (WasmlabError, ValueError, wasmtime.WasmtimeError) as exc:
            message = str(exc).strip().splitlines()[0]
            self.error.value = error_html("error", message)
            return None
        finally:
            self.run_button.disabled = False
            self.progress.description = "idle"
        if measurement.errors:
            failed = "; ".join(f"{v}: {e.splitlines()[0]}" for v, e in measurement.errors.items())
            self.error.value = error_html("error", failed)
        label = (
            f"#{len(self.runs) + 1} {scenario.runtime} ({scenario.call_path}), slots {scenario.pool.slots}, "
            f"{scenario.cache.policy}/{scenario.cache.size}, {scenario.workload.spec}"
        )
        self.runs.append((label, measurement))
        self.refresh()
        return measurement

    def clear(self) -> None:
        self.runs.clear()
        self.error.value = ""
        self.refresh()

    def refresh(self) -> None:
        """Redraw the table, the figure and the metadata from ``self.runs``."""
        # Assigning outputs (rather than ``with self.figure: display(...)``) works the same
        # inside a kernel and outside one, where the tests drive the explorer.
        self.figure.outputs = ()
        if not self.runs:
            self.table.value = "<i>No runs yet: set the knobs and press Run.</i>"
            self.metadata.value = ""
            return
        table = comparison_table(self.runs)
        formatted = table.assign(speedup=[speedup_text(row) for row in table.to_dict("records")]).drop(
            columns=["speedup_ci_low", "speedup_ci_high"]).rename(
            columns={"mean_us": "mean µs", "p50_us": "p50 µs", "p99_us": "p99 µs", "speedup": "speedup (95% interval)",
                     "over": "over (its path's baseline)", "carried_over": "carried over (reused)"}
        )
        self.table.value = _TABLE_STYLE + formatted.to_html(index=False, float_format=lambda v: f"{v:.2f}", border=0)
        self.figure.append_display_data(Image(data=_png(comparison_figure(self.runs)), format="png"))
        # Every run listed is described, newest first: how it was measured, on what, how sure.
        self.metadata.value = "".join(
            f"<div><b>{html.escape(label)}</b><pre style='font-size:11px;white-space:pre-wrap'>"
            f"{html.escape(report.provenance(measurement))}</pre></div>" for label, measurement in reversed(self.runs))

    def widget(self) -> widgets.Widget:
        controls = widgets.VBox(
            [
                self.workload, self.variant, self.call_path, self.runtime, self.slots, self.max_memory_size,
                self.cache_policy, self.cache_size, self.reuse, self.requests,
                widgets.HBox([self.run_button, self.clear_button, self.progress]),
                self.error,
            ]
        )
        self.refresh()
        return widgets.VBox([controls, self.table, self.figure, self.metadata])


class AdvisorForm:
    """``wasmlab advise`` as a form: the goal's fields, an Advise button, a progress count, the advice and its front.

    The search runs in a child process of its own (as on the command line); the form shows the recommendation,
    each knob's measured effect and the settings as code, or the one line naming the constraint nothing met."""

    def __init__(self, workloads: str = "dirty-memory:kib=64", concurrency: int = 2, p99_us: float = 20.0,
                 address_space: str = "8GiB", budget_s: float = 30.0) -> None:
        style = {"description_width": "130px"}
        self.workloads = widgets.Text(value=workloads, description="workloads", style=style, placeholder="seed, fresh (comma-separated)")
        self.concurrency = widgets.IntText(value=concurrency, description="concurrency", style=style)
        self.p99_us = widgets.FloatText(value=p99_us, description="p99 target µs", style=style)
        self.rss_budget = widgets.Text(value="", description="RSS budget", style=style, placeholder="e.g. 64MiB; empty: none")
        self.address_space = widgets.Text(value=address_space, description="address space", style=style, placeholder="e.g. 8GiB")
        self.call_path = widgets.ToggleButtons(options=["native", "lean"], value="native", description="call path", style=style)
        self.trace = widgets.Text(value="repeat", description="trace", style=style, placeholder="repeat, uniform, zipf:s=1.1")
        self.budget_s = widgets.FloatText(value=budget_s, description="budget (s)", style=style)
        self.advise_button = widgets.Button(description="Advise", button_style="primary", icon="search")
        self.progress = widgets.HTML(value="idle")
        self.error = widgets.HTML()
        self.error.add_class("wasmlab-advisor-error")
        self.result = widgets.HTML()
        self.result.add_class("wasmlab-advice")
        self.figure = widgets.Output()
        self.figure.add_class("wasmlab-advisor-figure")
        self.advice: Any = None
        self.advise_button.on_click(lambda _: self.advise())

    def goal(self) -> Any:
        """The goal the form describes; raises the lab's error for a bad field."""
        from wasmlab.experiments.advisor.goal import goal_from

        workloads = [w.strip() for w in self.workloads.value.split(",") if w.strip()]
        return goal_from(workloads, self.concurrency.value, self.p99_us.value, self.rss_budget.value.strip(),
                         self.address_space.value.strip(), self.call_path.value, self.trace.value.strip())

    def advise(self) -> Any:
        """Run the advisor on the form's goal and show its answer (or the one-line reason nothing fits)."""
        from wasmlab.experiments.advisor.goal import Effort
        from wasmlab.experiments.advisor.search import advise
        from wasmlab.report import plots

        self.error.value, self.result.value, self.figure.outputs = "", "", ()
        measured = [0]

        def step(stage: str, row: dict[str, Any]) -> None:
            measured[0] += 1
            self.progress.value = f"{stage}: {measured[0]} runs measured"

        self.advise_button.disabled = True
        try:
            goal = self.goal()
            advice = advise(goal, Effort(budget_s=self.budget_s.value), step)
        except (WasmlabError, ValueError, wasmtime.WasmtimeError) as exc:
            self.error.value = error_html("advise", str(exc).strip().splitlines()[0])
            return None
        finally:
            self.advise_button.disabled = False
            self.progress.value = "idle"
        self.advice = advice
        if not advice.feasible:
            self.error.value = error_html("advise", advice.reason or "")
        self.result.value = "<pre style='font-size:11px'>" + html.escape(advice.render()) + "</pre>"
        front = pd.DataFrame(advice.pareto_rows())
        if not front.empty:
            fig = plots.advisor_front(front, goal.p99_us, advice.plot_point(), goal.address_space)
            self.figure.append_display_data(Image(data=_png(fig), format="png"))
        return advice

    def widget(self) -> widgets.Widget:
        controls = widgets.VBox([self.workloads, self.concurrency, self.p99_us, self.rss_budget, self.address_space, self.call_path,
                                 self.trace, self.budget_s, widgets.HBox([self.advise_button, self.progress]), self.error])
        return widgets.VBox([controls, self.result, self.figure])


def run_unattended(scenario: Scenario, folder: Any = None) -> tuple[pd.DataFrame, Any]:
    """What ``00_explore`` does under papermill with ``interactive=False``: one comparison,
    saved as results, ``comparison.parquet`` and ``comparison.png`` in ``folder``
    (default: ``data/results/00_explore/<run id>``)."""
    from pathlib import Path

    from wasmlab.measure.results import save_measurement, write_parquet
    from wasmlab.storage import atomic_write, results_dir

    measurement = run_scenario(scenario)
    folder = save_measurement(measurement, Path(folder) if folder else results_dir("00_explore", measurement.metadata["run_id"]))
    runs = [("papermill", measurement)]
    table = comparison_table(runs)
    write_parquet(table, folder / "comparison.parquet")
    png = _png(comparison_figure(runs))
    atomic_write(folder / "comparison.png", lambda tmp: tmp.write_bytes(png))
    return table, folder
