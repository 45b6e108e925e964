"""The advisor's answer: the recommendation with its measured figures, a line per knob saying why, the front,
what exhaustion does, the settings as code, and, when nothing fits, the binding constraint in one line."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from wasmlab.experiments.advisor.goal import Effort, Goal, confirm_requests
from wasmlab.experiments.advisor.needs import ServingNeeds
from wasmlab.experiments.advisor.space import WASMTIME_DEFAULTS, Candidate, SearchSpace, layout_sizes, size
from wasmlab.experiments.advisor.summary import Summary

if TYPE_CHECKING:
    from wasmlab.experiments.advisor.claim import Claim
    from wasmlab.experiments.advisor.trials import TrialRunner

FORMAT_VERSION = 1


def pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (both minimised)."""
    front = []
    for i, (a, b) in enumerate(points):
        if not any((c <= a and d <= b) and (c < a or d < b) for j, (c, d) in enumerate(points) if j != i):
            front.append(i)
    return front


def describe_knob(knob: str, candidate: Candidate, needs: ServingNeeds) -> str:
    """The value of one knob of ``candidate`` in words."""
    value = getattr(candidate, knob)
    if knob == "allocator":
        return f"pooling ({candidate.slots} slots)" if candidate.pooled else "on-demand"
    if knob == "layout":
        reservation, guard = layout_sizes(value, needs)
        return ("4 GiB reservation + 32 MiB guard (wasmtime's)" if reservation is None
                else f"{size(reservation)} reservation + {size(guard or 0)} guard")
    if knob in ("keep_resident", "table_keep_resident"):
        return size(value) if value else "0"
    if knob == "warm_slots":
        return "100 (wasmtime's)" if value == "default" else value
    if knob == "reuse":
        return f"{value} requests per instance" if value > 1 else "1 (a fresh instance per request)"
    if knob in ON_OFF:
        return ON_OFF[knob][0 if value else 1]
    return str(value)


# The on/off knobs in words: (on, off).
ON_OFF = {"cow": ("on", "off"), "pre": ("on (once per module)", "off (instantiate through the linker)"),
          "snapshot": ("on (a Wizer snapshot taken after start-up)", "off (start-up on every request)")}


KNOB_NAMES = {"allocator": "allocator", "slots": "slots", "layout": "memory layout", "keep_resident": "linear_memory_keep_resident",
              "table_keep_resident": "table_keep_resident", "warm_slots": "max_unused_warm_slots",
              "decommit_batch": "decommit_batch_size", "cow": "memory_init_cow", "pre": "InstancePre", "reuse": "instance reuse",
              "snapshot": "Wizer snapshot",
              "cache_size": "cache size"}


def _p99_text(summary: Summary) -> str:
    """A median p99 with the range of its runs: ``4.2 µs (3.8-4.6)``."""
    return f"{summary.p99_us:.1f} µs ({summary.p99_us_best:.1f}-{summary.p99_us_worst:.1f})"


def _bytes(n: float) -> str:
    """A measured size for people; "not measured" where no run served every request (NaN)."""
    return size(int(n)) if n == n else "not measured"


def _delta(n: float) -> str:
    if n != n:
        return "not measured"
    return ("+" if n >= 0 else "-") + size(int(abs(n)))


@dataclass(frozen=True)
class Effect:
    """Why one knob has its value: its measured effect against the default, or why it was not measured."""

    knob: str
    value: str
    default: str
    measured: bool
    line: str
    p99_us: float | None = None
    p99_us_default: float | None = None
    rss_delta_bytes: float | None = None
    address_space_delta_bytes: float | None = None
    separated: bool = False  # every run with the value had a lower p99 than every run with the default
    saves_memory: bool = False  # the value holds less resident memory or reserves less address space than the default
    p99_text: str = ""  # median p99 with the runs' range, with the value
    p99_text_default: str = ""  # the same with the default

    def not_kept(self) -> Effect:
        """This effect as the reason a knob went back to its default."""
        return dataclasses.replace(self, line=f"{KNOB_NAMES[self.knob]} left at {self.default}: with {self.value} p99 was "
                                   f"{self.p99_text}, with {self.default} {self.p99_text_default}, RSS {_delta(self.rss_delta_bytes or 0)}: "
                                   f"within the runs' spread, and it saves no memory")

    @classmethod
    def of(cls, knob: str, candidate: Candidate, mine: Summary, theirs: Summary, needs: ServingNeeds) -> Effect:
        other = theirs.candidate
        value, default = describe_knob(knob, candidate, needs), describe_knob(knob, other, needs)
        if not theirs.p99_us == theirs.p99_us:  # NaN: no run with the default served every request
            failed = ", ".join(sorted(set(theirs.outcomes)))
            line = f"{KNOB_NAMES[knob]} {value} (instead of {default}): with {default} no run served every request ({failed})"
            return cls(knob, value, default, True, line, mine.p99_us, None, None, None, True, False, _p99_text(mine), "")
        rss = mine.rss_bytes - theirs.rss_bytes
        address = mine.address_space_bytes - theirs.address_space_bytes
        parts = [f"p99 {_p99_text(theirs)} -> {_p99_text(mine)}", f"RSS {_delta(rss)}"]
        if abs(address) >= 1 << 20:
            parts.append(f"address space {_delta(address)}")
        if abs(mine.faults_per_request - theirs.faults_per_request) >= 0.5:
            parts.append(f"faults/request {theirs.faults_per_request:.1f} -> {mine.faults_per_request:.1f}")
        separated = mine.p99_us_worst < theirs.p99_us_best
        saves = rss < -max(64 * 1024, 0.1 * theirs.rss_bytes) or address < -(1 << 20)
        if not separated and not saves:
            # Kept only because the simpler candidate without it missed the target.
            parts.append("runs overlap (the candidate without it missed the target)")
        line = f"{KNOB_NAMES[knob]} {value} (instead of {default}): " + ", ".join(parts)
        return cls(knob, value, default, True, line, mine.p99_us, theirs.p99_us, rss, address, bool(separated), bool(saves),
                   _p99_text(mine), _p99_text(theirs))

    @classmethod
    def unchanged(cls, knob: str, candidate: Candidate, needs: ServingNeeds, goal: Goal) -> Effect:
        value = describe_knob(knob, candidate, needs)
        default = describe_knob(knob, candidate.replace(**{knob: WASMTIME_DEFAULTS[knob]}), needs)
        if knob == "table_keep_resident" and not needs.table_elements:
            why = "the guests have no table"
        elif getattr(candidate, knob) != WASMTIME_DEFAULTS[knob]:
            other = candidate.replace(**{knob: WASMTIME_DEFAULTS[knob]})
            why = (f"wasmtime's default ({default}) would reserve at least {size(other.address_space_estimate(needs, goal.concurrency))}, "
                   f"over the {size(goal.address_space or 0)} budget: not measured")
        else:
            why = "wasmtime's default: no other setting measured met the target with less memory"
        return cls(knob, value, default, False, f"{KNOB_NAMES[knob]} {value}: {why}")


@dataclass
class Advice:
    """Everything ``wasmlab advise`` prints, as text or JSON."""

    goal: Goal
    needs: ServingNeeds
    space: SearchSpace
    feasible: bool
    recommended: Summary | None
    effects: list[Effect]
    exhaustion: dict[str, Any] | None
    summaries: list[Summary]
    rows: list[dict[str, Any]]
    elapsed_s: float
    crashes: int
    effort: Effort
    reason: str | None = None
    closest: Summary | None = None
    snippets: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None  # the recommendation met the target in confirmation but not in every later run
    claim: Claim | None = None  # the recommendation's own fresh runs: the figures stated and the command that re-measures them

    @classmethod
    def infeasible(cls, goal: Goal, needs: ServingNeeds, space: SearchSpace, summaries: dict[Candidate, Summary],
                   rows: list[dict[str, Any]], runner: TrialRunner, elapsed_s: float, pooled: list[tuple[int, str]],
                   on_demand: list[str], effort: Effort) -> Advice:
        """No confirmed candidate met the goal: name the binding constraint and the closest candidate."""
        within = [s for s in summaries.values() if s.within_budgets and s.p99_us_worst == s.p99_us_worst]
        closest = min(within or summaries.values(), key=lambda s: s.p99_us_worst, default=None)
        if closest is None:
            ok = [r for r in rows if r.get("outcome") == "ok"]
            reason = (f"no candidate served every request ({len(rows)} measured, outcomes: "
                      f"{', '.join(sorted({str(r.get('outcome')) for r in rows}))})" if not ok else
                      f"no candidate was within the memory budgets ({len(ok)} measured)")
        elif within and closest.p99_us_worst <= goal.p99_us and closest.carried_over_requests:
            # Fast enough only by reusing instances whose results showed an earlier request's state: not a recommendation.
            reason = (f"p99 target {goal.p99_us:g} µs met only with instance reuse that carried state over: {closest.label} "
                      f"({closest.p99_us_worst:.1f} µs) gave {closest.carried_over_requests:,} of {closest.reused_requests:,} reused "
                      f"requests a result a fresh instance does not")
        elif within:
            reason = (f"p99 target {goal.p99_us:g} µs not met: best {closest.p99_us:.1f} µs (worst of {closest.runs} runs "
                      f"{closest.p99_us_worst:.1f} µs) at {closest.label}")
            if goal.address_space is not None and not pooled:
                reason += f"; address space {size(goal.address_space)} leaves no room for a pool of {goal.concurrency} slot(s)"
            elif goal.address_space is not None and any(layout != "tight" for layout in space.layouts) and all(
                    layout == "tight" for _, layout in pooled):
                reason += f"; address space {size(goal.address_space)} allows only the bounds-checked tight layout"
        else:
            reason = (f"no candidate within the budgets: closest {closest.label} at RSS {_bytes(closest.rss_bytes)}, "
                      f"address space {_bytes(closest.address_space_bytes)}")
        return cls(goal, needs, space, False, None, [], None, list(summaries.values()), rows, elapsed_s, runner.crashes,
                   effort, reason, closest)

    @property
    def confirm_requests(self) -> int:
        return confirm_requests(self.effort)

    @property
    def flags(self) -> list[str]:
        if self.recommended is None:
            return []
        return self.recommended.candidate.flags(self.needs, self.goal.call_path, self.goal.workloads, self.goal.trace_spec)

    def pareto_rows(self) -> list[dict[str, Any]]:
        """Screened and confirmed runs that served every request, each marked on the p99/RSS front or not."""
        ok = [r for r in self.rows if r.get("outcome") == "ok" and r.get("stage") in ("screen", "confirm")]
        front = set(pareto([(r["latency_us_p99"], r["rss_bytes"]) for r in ok]))
        return [{**r, "on_front": i in front} for i, r in enumerate(ok)]

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per confirmed candidate (its medians over runs, its knobs), the recommendation marked."""
        chosen = self.recommended.candidate if self.recommended else None
        rows = [{**{k: v for k, v in s.to_dict().items() if k != "candidate"}, **asdict(s.candidate),
                 "recommended": s.candidate == chosen, "outcomes": ",".join(s.outcomes)} for s in self.summaries]
        if self.recommended is not None and chosen not in {s.candidate for s in self.summaries}:
            s = self.recommended
            rows.append({**{k: v for k, v in s.to_dict().items() if k != "candidate"}, **asdict(s.candidate), "recommended": True,
                         "outcomes": ",".join(s.outcomes)})
        return rows

    def plot_point(self) -> dict[str, float] | None:
        """Where the recommendation sits on the front plot (its medians)."""
        best = self.recommended
        return None if best is None else {"latency_us_p99": best.p99_us, "rss_bytes": best.rss_bytes,
                                          "address_space_bytes": best.address_space_bytes}

    def to_json(self) -> dict[str, Any]:
        best = self.recommended
        data: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "feasible": self.feasible,
            "reason": self.reason,
            "warning": self.warning,
            "target_met_in_every_run": bool(best and best.meets_target),
            "goal": asdict(self.goal),
            "needs": self.needs.to_dict(),
            "flags": self.flags,
            "claim": self.claim.to_dict() if self.claim else None,
            "p99_us": best.p99_us if best else None,
            "p99_us_worst": best.p99_us_worst if best else None,
            "p50_us": best.p50_us if best else None,
            "throughput_rps": best.throughput_rps if best else None,
            "rss_bytes": best.rss_bytes if best else None,
            "address_space_bytes": best.address_space_bytes if best else None,
            "recommended": best.to_dict() if best else None,
            "closest": self.closest.to_dict() if self.closest else None,
            "why": [asdict(e) for e in self.effects],
            "exhaustion": self.exhaustion,
            "snippets": self.snippets,
            "search_space": self.space.to_dict(),
            "confirmed": [s.to_dict() for s in self.summaries],
            "runs": self.rows,
            "elapsed_s": self.elapsed_s,
            "crashes": self.crashes,
            "metadata": self.metadata,
        }
        return data

    def exhaustion_line(self) -> str | None:
        if self.exhaustion is None or self.recommended is None:
            return None
        e, slots = self.exhaustion, self.recommended.candidate.slots
        requests = (e.get("outcome_ok") or 0) + (e.get("failed_requests") or 0)
        failed = e.get("outcome_pool_exhausted") or 0
        seen = (f"{failed} of {requests} requests ({100 * failed / max(requests, 1):.1f}%) failed at once with 'pool exhausted'"
                if failed else f"none of {requests} requests found every slot taken (requests this short seldom overlap "
                f"{e.get('threads')} deep on {self.metadata.get('cpu_count', '?')} cores)")
        return (f"Exhaustion: {e.get('threads')} workers on {slots} slot(s): {seen}; wasmtime's pooling allocator fails an "
                f"instantiation when no slot is free (it does not queue), so a host must cap in-flight requests at {slots} "
                f"or wait and retry (--exhaustion wait measures that)")

    def render(self) -> str:
        g, lines = self.goal, []
        budgets = ", ".join(b for b in (f"RSS <= {size(g.rss_budget)}" if g.rss_budget else "",
                                        f"address space <= {size(g.address_space)}" if g.address_space else "") if b)
        lines.append(f"Goal: p99 <= {g.p99_us:g} µs at {g.concurrency} concurrent request(s) of {', '.join(g.workloads)} on the "
                     f"{g.call_path} path" + (f", {budgets}" if budgets else "") + (f", trace {g.trace_spec}" if len(g.workloads) > 1 else ""))
        lines.append(f"Serving needs max_memory_size {size(self.needs.max_memory_size)} (instantiation alone: "
                     f"{size(self.needs.instantiation_memory)}), found by running requests under a store memory limit")
        n = self.needs
        if n.components:
            lines.append(f"Components ({', '.join(n.components)}): one instance holds {'at most ' if len(n.components) > 1 else ''}"
                         f"{n.max_core_instances_per_component} core "
                         f"instance(s), {n.max_memories_per_component} memory(ies), {n.max_tables_per_component} table(s) and "
                         f"{size(n.max_component_instance_size)} of component instance (asked of wasmtime); the pool's totals are "
                         f"slots x these")
        best = self.recommended
        if best is None:
            lines.append(f"No recommendation: {self.reason}")
        else:
            claim = self.claim
            p99 = claim.p99_text() if claim else f"p99 {_p99_text(best)}"
            lines += [f"Recommended: {best.label}",
                      f"  measured: {p99}, p50 {best.p50_us:.1f} µs, {best.throughput_rps:,.0f} req/s, RSS {_bytes(best.rss_bytes)}, "
                      f"reserved address space {_bytes(best.address_space_bytes)}, {best.faults_per_request:.1f} faults/request"
                      + (" (medians of the same runs)" if claim else ""),
                      *([f"  re-measure: {claim.command_text}"] if claim else []),
                      *([f"  instance reuse: {best.candidate.reuse} requests per instance; {best.carried_over_requests:,} of "
                         f"{best.reused_requests:,} reused requests carried state over (results, failures and WASI outputs "
                         f"compared with a fresh instance's; timing and memory the guest never reports are not seen)"]
                        if best.candidate.reuse > 1 else []),
                      *([f"  note: {self.warning}"] if self.warning else []),
                      f"Why each setting (p99: median (range) of {self.effort.repeats} runs x {2 * self.effort.requests:,} requests per "
                      f"worker each, in rotation):"]
            lines += [f"  {e.line}" for e in self.effects]
            exhaustion = self.exhaustion_line()
            if exhaustion:
                lines.append(exhaustion)
            lines.append("wasmlab flags (wasmlab concurrency --threads N ...): " + " ".join(self.flags))
            for name, code in self.snippets.items():
                lines += [f"{name}:", *(f"  {line}" for line in code.splitlines())]
        screened = sum(1 for r in self.rows if r.get("stage") == "screen")
        lines.append(f"Measured: {screened} candidates screened ({self.effort.requests:,} requests per worker each), "
                     f"{len(self.summaries)} confirmed with {self.effort.repeats} runs each in rotation "
                     f"({self.confirm_requests:,} requests per worker), each knob's effect against its default in rotation; "
                     f"the target counts as met only if the worst run's p99 meets it; the claim from fresh runs after the choice; "
                     f"{self.elapsed_s:.0f} s" + (f", {self.crashes} child crash(es)" if self.crashes else "")
                     + (f"; {self.metadata.get('cpu_model')}, {self.metadata.get('cpu_count')} cores, wasmtime "
                        f"{self.metadata.get('wasmtime_version')}" if self.metadata else "")
                     + (f"; load {self.metadata['loadavg_1m_before']:.2f} -> {self.metadata['loadavg_1m_after']:.2f}, other "
                        f"processes {self.metadata['other_cpu_cores']:.2f} cores (a shared machine moves tails)"
                        if "other_cpu_cores" in self.metadata else ""))
        return "\n".join(lines)
