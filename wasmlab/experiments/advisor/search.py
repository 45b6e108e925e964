"""The advisor's search: Optuna's multi-objective TPE over the knobs, the front re-measured, each knob explained.

1. **Screen** (about half of ``budget_s``): Optuna proposes candidates (p99 and peak RSS both minimised, the
   target and the budgets as constraints, so it spends its trials where the front is); each is measured once,
   short.  Layouts and slot counts whose address space visibly exceeds the budget are never proposed.
2. **Confirm**: the screened front and the fastest feasible candidates are measured again, ``repeats`` times each in
   rotation, each run long enough for its p99 (:func:`~.goal.confirm_requests`); a candidate meets the target only if
   its *worst* repetition's p99 does.
3. **Explain**: the recommendation again beside itself with one knob at a time back at wasmtime's default, in
   rotation, so each line says what that knob measurably did; and the pool under twice as many workers as slots, to
   show what exhaustion does.
4. **Claim**: the recommendation measured afresh (:mod:`~.claim`): the figures stated, how, and the command that
   measures them again.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from wasmlab.config import MiB
from wasmlab.errors import ConfigError, Infeasible, Interrupted, signal_name
from wasmlab.experiments.advisor.advice import Advice, Effect, pareto
from wasmlab.experiments.advisor.claim import Claim, measure_claim
from wasmlab.experiments.advisor.goal import Effort, Goal, confirm_requests
from wasmlab.experiments.advisor.needs import ServingNeeds, serving_needs
from wasmlab.experiments.advisor.record import TrialLog
from wasmlab.experiments.advisor.snippets import all_snippets, release_symbols
from wasmlab.experiments.advisor.space import (
    WASMTIME_DEFAULTS,
    Candidate,
    SearchSpace,
    search_space,
    size,
    smallest_pool_slot,
)
from wasmlab.experiments.advisor.summary import Summary, summarize
from wasmlab.experiments.advisor.trials import Load, TrialRunner
from wasmlab.measure import metadata as md
from wasmlab.measure.hygiene import Hygiene

# Share of the time budget the screening may use; the rest goes to confirming and explaining.
SCREEN_SHARE = 0.5
# At most this many candidates are re-measured in the confirmation stage.
FINALISTS = 5


def feasible_shapes(goal: Goal, needs: ServingNeeds, space: SearchSpace) -> tuple[list[tuple[int, str]], list[str]]:
    """Pool (slots, layout) pairs and on-demand layouts whose address space fits the budget (lower bounds, not measured)."""
    def fits(candidate: Candidate) -> bool:
        return goal.address_space is None or candidate.address_space_estimate(needs, goal.concurrency) <= goal.address_space
    pooled = [(s, layout) for s in space.slots for layout in space.layouts if fits(Candidate("pooling", s, layout))]
    on_demand = [layout for layout in space.layouts if fits(Candidate("on-demand", 0, layout))]
    return pooled, on_demand


def address_space_refusal(goal: Goal, needs: ServingNeeds) -> str:
    """The one line for a budget no candidate fits, naming one slot's tightest address space."""
    slot, memories = smallest_pool_slot(needs), max(1, needs.max_memories_per_component)
    memory = f"{memories} x {size(needs.max_memory_size)}" if memories > 1 else size(needs.max_memory_size)
    return (f"address space {size(goal.address_space or 0)} is below what {goal.concurrency} concurrent request(s) reserve at the "
            f"tightest layout: a pool slot takes {size(slot)} ({memory} of memory serving needs, no guard, "
            f"a {size(slot - memories * needs.max_memory_size)} stack slot) and an on-demand instance at least {size(needs.max_memory_size)}")


def _sampler(goal: Goal, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Constraints come with each trial (Trial.set_constraint, Optuna 5): the target and budgets, <= 0 where met.
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)


def propose(trial: Any, space: SearchSpace, pooled: list[tuple[int, str]], on_demand: list[str], modules: int) -> Candidate:
    """A candidate from Optuna's trial (a define-by-run space: pool knobs only for the pooling allocator)."""
    allocators = (["pooling"] if pooled else []) + (["on-demand"] if on_demand else [])
    allocator = trial.suggest_categorical("allocator", allocators)
    cache = trial.suggest_categorical("cache_size", list(space.cache_sizes)) if modules > 1 else 1
    cow = trial.suggest_categorical("cow", [True, False])
    pre = trial.suggest_categorical("pre", list(space.pre))
    reuse = trial.suggest_categorical("reuse", list(space.reuse))
    snapshot = trial.suggest_categorical("snapshot", list(space.snapshot))
    if allocator == "on-demand":
        layout = trial.suggest_categorical("on_demand_layout", on_demand)
        return Candidate("on-demand", 0, layout, cow=cow, pre=pre, cache_size=cache, reuse=reuse, snapshot=snapshot)
    shape = trial.suggest_categorical("pool_shape", [f"{s}:{layout}" for s, layout in pooled])
    slots_text, _, layout = shape.partition(":")
    slots = int(slots_text)
    keep = trial.suggest_categorical("keep_resident", list(space.keep_resident))
    table_keep = trial.suggest_categorical("table_keep_resident", list(space.table_keep_resident))
    warm = trial.suggest_categorical("warm_slots", ["default", "0"])
    batch = trial.suggest_categorical("decommit_batch", list(space.decommit_batch))
    return Candidate("pooling", slots, layout, keep, table_keep, warm, slots if batch == "slots" and slots > 1 else 1, cow, pre, cache,
                     reuse, snapshot)


def starting_points(space: SearchSpace, pooled: list[tuple[int, str]], on_demand: list[str], goal: Goal) -> list[dict[str, Any]]:
    """Trials Optuna runs first: wasmtime's defaults (pooled at the fewest slots that fit, and on demand), the pool
    keeping its whole memory resident, and, for guests with a start-up, the default pool serving their Wizer snapshot,
    so the front has anchors before the sampler takes over."""
    points: list[dict[str, Any]] = []
    common = {"cow": True, "pre": False, "reuse": 1, "snapshot": False, **({"cache_size": space.cache_sizes[0]} if len(goal.workloads) > 1 else {})}
    if pooled:
        slots, layout = min(pooled, key=lambda p: (p[0], p[1] != "default"))
        pool = {"allocator": "pooling", "pool_shape": f"{slots}:{layout}", "table_keep_resident": 0, "warm_slots": "default",
                "decommit_batch": "1", **common}
        points += [{**pool, "keep_resident": 0}, {**pool, "keep_resident": space.keep_resident[-1]}]
        if True in space.snapshot:
            points.append({**pool, "keep_resident": 0, "snapshot": True})
    if on_demand:
        points.append({"allocator": "on-demand", "on_demand_layout": on_demand[0], **common})
    return points


def advise(goal: Goal, effort: Effort | None = None, progress: Callable[[str, dict[str, Any]], None] | None = None,
           needs: ServingNeeds | None = None, target_release: str | None = None) -> Advice:
    """Search, confirm, explain and claim; an :class:`Advice` (``feasible`` False with the binding constraint when none fits).

    ``target_release`` is the wasmtime release the Rust snippet is written for (default: the installed one, which
    is also the one measured); its library must export every method the snippet names.  An interrupt (SIGINT,
    SIGTERM) raises :class:`~wasmlab.errors.Interrupted` holding the :class:`TrialLog` of the trials finished so far.
    """
    effort = effort or Effort()
    hygiene = Hygiene()
    release, has_symbol = release_symbols(target_release)
    log = TrialLog(goal, effort, {**md.new_run(), **md.machine(), "target_release": release})
    try:
        advice = _advise(goal, effort, progress or (lambda stage, row: None), needs, (release, has_symbol), log)
    except KeyboardInterrupt as exc:
        log.metadata.update(hygiene.finish())
        stop = Interrupted(signal_name(exc), log if log.rows else None, len(log.rows), 0, "trials")
        stop.resume = f"; stopped in the {log.stage} stage"
        raise stop from None
    advice.metadata.update(hygiene.finish())
    return advice


def check_reuse_allowed(goal: Goal) -> None:
    """--allow-reuse for guests reuse serves on the goal's call path (core modules, recipes, WASI commands, components
    calling one export), or one line naming the guest and why."""
    from wasmlab.host.callpaths.reuse import refusal
    from wasmlab.workloads import load_workload

    for spec in goal.workloads:
        reason = refusal(load_workload(spec), native=goal.call_path == "native")
        if reason:
            raise ConfigError(f"--allow-reuse: {reason}")


def all_have_init(goal: Goal) -> bool:
    """Every guest names its start-up (a recipe's ``init``), so a Wizer snapshot of it can be served."""
    from wasmlab.workloads import load_workload

    return all(load_workload(spec).init for spec in goal.workloads)


def _advise(goal: Goal, effort: Effort, report: Callable[[str, dict[str, Any]], None], needs: ServingNeeds | None,
            release: tuple[str, Callable[[str], bool]], log: TrialLog) -> Advice:
    started, rows = time.perf_counter(), log.rows
    needs = needs or serving_needs(goal.workloads)
    if goal.allow_reuse:
        check_reuse_allowed(goal)
    space = search_space(needs, goal.concurrency, len(goal.workloads), goal.allow_reuse, all_have_init(goal))
    pooled, on_demand = feasible_shapes(goal, needs, space)
    if not pooled and not on_demand:
        raise Infeasible(address_space_refusal(goal, needs))
    load = Load(goal.concurrency, goal.call_path, goal.workloads, goal.trace, goal.zipf_s, effort.requests)
    runner = TrialRunner(needs, load)
    try:
        log.stage = "screen"
        seen = screen(goal, effort, space, pooled, on_demand, runner, rows, report, started)
        # 2. Confirm the front: fresh runs, each long enough for its p99 (goal.confirm_requests).
        log.stage = "confirm"
        finalists = pick_finalists(goal, list(seen.values()))
        confirmed = measure_in_rotation(runner, finalists, effort, "confirm", rows, report, confirm_requests(effort))
        summaries = {c: summarize(goal, c, runs) for c, runs in confirmed.items()}
        meeting = [s for s in summaries.values() if s.meets_target and s.within_budgets]
        if not meeting:
            advice = Advice.infeasible(goal, needs, space, summaries, rows, runner, time.perf_counter() - started, pooled, on_demand,
                                       effort)
            advice.metadata = log.metadata
            return advice
        # 3. Explain: each knob back at its default, beside the recommendation, in rotation.  A knob whose effect is
        # within the runs' spread (and saves no memory) goes back to its default: fewer settings to paste, and the
        # simpler candidate is measured (and explained) again before it is recommended.  The explanation's runs are
        # new runs of the recommendation too: if one of them misses the target, the next candidate is tried once.
        log.stage = "explain"
        attempts: list[tuple[Candidate, Summary, list[Effect]]] = []
        remaining = list(meeting)
        while remaining and len(attempts) < 2:
            pick = choose(remaining)
            remaining.remove(pick)
            attempts.append(explained_choice(pick, confirmed.get(pick.candidate, []), goal, needs, pooled, on_demand, runner,
                                             effort, rows, report))
            if attempts[-1][1].meets_target:
                break
        chosen, final, lines = next((a for a in attempts if a[1].meets_target), attempts[0])
        # 4. Claim: the figures stated come from runs made after the choice, for nothing else (no winner's curse).
        log.stage = "claim"
        claim = measure_claim(runner, chosen, goal, effort, chosen.flags(needs, goal.call_path, goal.workloads, goal.trace_spec),
                              rows, report)
        log.stage = "exhaustion"
        exhaustion = None
        if chosen.pooled:
            exhaustion = {**runner.measure(chosen, threads=2 * chosen.slots, requests=max(500, effort.requests // 4)),
                          "stage": "exhaustion"}
            rows.append(exhaustion)
            report("exhaustion", exhaustion)
        measured = f"measured: {claim.p99_text()} at {goal.concurrency} concurrent request(s)\nre-measure: {claim.command_text}"
        return Advice(goal=goal, needs=needs, space=space, feasible=True, recommended=claim.summary, effects=lines,
                      exhaustion=exhaustion, summaries=list(summaries.values()), rows=rows,
                      elapsed_s=time.perf_counter() - started, crashes=runner.crashes, effort=effort,
                      snippets=all_snippets(chosen, needs, *release, measured=measured), metadata=log.metadata,
                      warning=edge_warning(goal, final, claim), claim=claim)
    finally:
        runner.close()


def screen(goal: Goal, effort: Effort, space: SearchSpace, pooled: list[tuple[int, str]], on_demand: list[str], runner: TrialRunner,
           rows: list[dict[str, Any]], report: Callable[[str, dict[str, Any]], None], started: float) -> dict[Candidate, dict[str, Any]]:
    """1. Screen: Optuna's candidates, each measured once and short, until the screening's share of the budget is spent;
    each candidate's row."""
    import optuna

    study = optuna.create_study(directions=["minimize", "minimize"], sampler=_sampler(goal, effort.seed))
    anchors = starting_points(space, pooled, on_demand, goal)
    for point in anchors:
        study.enqueue_trial(point, skip_if_exists=True)
    seen: dict[Candidate, dict[str, Any]] = {}
    runner.warm(propose(optuna.trial.FixedTrial(anchors[0]), space, pooled, on_demand, len(goal.workloads)))
    deadline = started + effort.budget_s * SCREEN_SHARE
    repeats_in_a_row = 0
    # The anchors (wasmtime's defaults) are measured however short the budget, so a slow machine or a tight
    # budget still gets an answer measured against the defaults instead of "0 candidates".
    while (len(seen) < len(anchors) or time.perf_counter() < deadline) and len(seen) < effort.max_trials \
            and repeats_in_a_row < 40:
        trial = study.ask()
        candidate = propose(trial, space, pooled, on_demand, len(goal.workloads))
        if candidate in seen:
            repeats_in_a_row += 1
            row = seen[candidate]
        else:
            repeats_in_a_row = 0
            row = {**runner.measure(candidate, seed=len(seen)), "stage": "screen"}
            seen[candidate] = row
            rows.append(row)
            report("screen", row)
        if row["outcome"] != "ok":
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        for name, value in goal.violations(row).items():
            trial.set_constraint(name, value)
        study.tell(trial, [row["latency_us_p99"], row["rss_bytes"] / MiB])
    return seen


def edge_warning(goal: Goal, final: Summary, claim: Claim) -> str | None:
    """A note when the recommendation met the goal in confirmation but not in every later run: the explanation's, or the
    claim's (then the claim, the worst run, is over the target)."""
    if not final.meets_target:
        return (f"{sum(1 for r in final.outcomes if r == 'ok')} runs of the recommendation, the worst {final.p99_us_worst:.1f} µs: "
                f"not every run met {goal.p99_us:g} µs (nor did the next candidate's); the target is at the edge of what this "
                f"machine holds")
    if not claim.summary.meets_target or not claim.summary.within_budgets:
        return (f"the claim's runs ({claim.how}) did not all meet the goal (worst p99 {claim.p99_us:.1f} µs against "
                f"{goal.p99_us:g} µs); the goal is at the edge of what this machine holds")
    return None


# The fields one explained knob reverts (slots also bounds the decommit batch).
SIMPLIFIES = {"allocator": ("allocator", "slots", "keep_resident", "table_keep_resident", "warm_slots", "decommit_batch"),
              "slots": ("slots", "decommit_batch"), "layout": ("layout",), "keep_resident": ("keep_resident",),
              "table_keep_resident": ("table_keep_resident",), "warm_slots": ("warm_slots",), "decommit_batch": ("decommit_batch",),
              "cow": ("cow",), "pre": ("pre",), "reuse": ("reuse",), "snapshot": ("snapshot",), "cache_size": ("cache_size",)}


def explained_choice(pick: Summary, earlier: list[dict[str, Any]], goal: Goal, needs: ServingNeeds, pooled: list[tuple[int, str]],
                     on_demand: list[str], runner: TrialRunner, effort: Effort, rows: list[dict[str, Any]],
                     report: Callable[[str, dict[str, Any]], None]) -> tuple[Candidate, Summary, list[Effect]]:
    """``pick`` explained knob by knob and simplified where a knob does nothing measurable: the candidate to recommend,
    its summary over all its runs, and a line per knob."""
    chosen, final, effects, kept = explain(pick.candidate, goal, needs, pooled, on_demand, runner, effort, rows, report, earlier)
    simpler = chosen
    for knob, other in kept.items():
        if not kept_for_effect(effects[knob]):
            simpler = simpler.replace(**{f: getattr(other, f) for f in SIMPLIFIES[knob]})
    dropped: list[Effect] = []
    if simpler != chosen:
        again = explain(simpler, goal, needs, pooled, on_demand, runner, effort, rows, report, [])
        if again[1].meets_target and again[1].within_budgets:
            dropped = [effects[k].not_kept() for k in kept if not kept_for_effect(effects[k])]
            chosen, final, effects, kept = again
    lines = [effects[k] for k in kept] + dropped
    lines += [Effect.unchanged(knob, chosen, needs, goal) for knob in untouched(chosen, kept)
              if knob not in {e.knob for e in dropped}]
    return chosen, final, lines


def explain(candidate: Candidate, goal: Goal, needs: ServingNeeds, pooled: list[tuple[int, str]], on_demand: list[str],
            runner: TrialRunner, effort: Effort, rows: list[dict[str, Any]], report: Callable[[str, dict[str, Any]], None],
            earlier: list[dict[str, Any]]) -> tuple[Candidate, Summary, dict[str, Effect], dict[str, Candidate]]:
    """``candidate`` beside itself with each knob at its default, in rotation: its summary (with ``earlier`` runs of it),
    the effect of each knob, and the neighbour each was measured against."""
    neighbours = reverted(candidate, goal, needs, pooled, on_demand)
    explained = measure_in_rotation(runner, [candidate, *neighbours.values()], effort, "explain", rows, report)
    final = summarize(goal, candidate, explained[candidate] + earlier)
    effects = {knob: Effect.of(knob, candidate, final, summarize(goal, other, explained[other]), needs)
               for knob, other in neighbours.items()}
    return candidate, final, effects, neighbours


def kept_for_effect(effect: Effect) -> bool:
    """Whether a knob earns its place: every run with it beat every run without it (no overlap of the runs' p99,
    about a 10% chance by luck with three runs each), or it saves resident memory or address space."""
    return effect.separated or effect.saves_memory


# Resident memory closer than this is one figure: peak RSS of a run moves by a few pages with what Python allocates.
RSS_RESOLUTION = 64 * 1024


def choose(meeting: Sequence[Summary]) -> Summary:
    """The candidate to recommend among those meeting the goal: least peak RSS (within :data:`RSS_RESOLUTION` or 10%,
    which a run's noise spans), then least address space, then the fewest knobs changed from wasmtime's defaults,
    then the lowest p99."""
    least = min(s.rss_bytes for s in meeting)
    tied = [s for s in meeting if s.rss_bytes <= max(least + RSS_RESOLUTION, 1.1 * least)]
    return min(tied, key=lambda s: (s.address_space_bytes, changed_knobs(s.candidate), s.p99_us))


def changed_knobs(candidate: Candidate) -> int:
    return sum(getattr(candidate, k) != v for k, v in WASMTIME_DEFAULTS.items() if k != "allocator")


def pick_finalists(goal: Goal, screened: list[dict[str, Any]]) -> list[Candidate]:
    """The screened candidates worth measuring again: within the memory budgets and served without failures,
    the p99/RSS front among those that met the target (or came within 1.5x of it), then the fastest, at most
    :data:`FINALISTS`."""
    ok = [r for r in screened if r["outcome"] == "ok" and goal.within_budgets(r)]
    near = [r for r in ok if r["latency_us_p99"] <= 1.5 * goal.p99_us] or ok
    front = [near[i] for i in pareto([(r["latency_us_p99"], r["rss_bytes"]) for r in near])]
    front.sort(key=lambda r: r["rss_bytes"])
    fastest = sorted(ok, key=lambda r: r["latency_us_p99"])
    chosen: list[dict[str, Any]] = []
    for row in front[:FINALISTS - 2] + fastest:
        if row not in chosen and len(chosen) < FINALISTS:
            chosen.append(row)
    return [candidate_of(r) for r in chosen]


def candidate_of(row: dict[str, Any]) -> Candidate:
    return Candidate(**{k: row[k] for k in Candidate.__dataclass_fields__})


def measure_in_rotation(runner: TrialRunner, candidates: list[Candidate], effort: Effort, stage: str, rows: list[dict[str, Any]],
                        report: Callable[[str, dict[str, Any]], None], requests: int | None = None) -> dict[Candidate, list[dict[str, Any]]]:
    """Each candidate ``effort.repeats`` times, the order rotated by repetition (drift of the machine spread over all),
    ``requests`` per worker in each run (default: twice the screening's)."""
    runs: dict[Candidate, list[dict[str, Any]]] = {c: [] for c in candidates}
    order = list(dict.fromkeys(candidates))
    if not order:
        return runs
    for repetition in range(effort.repeats):
        shift = repetition % len(order)
        for candidate in order[shift:] + order[:shift]:
            row = {**runner.measure(candidate, requests=requests or effort.requests * 2, seed=1000 + repetition), "stage": stage,
                   "repetition": repetition}
            runs[candidate].append(row)
            rows.append(row)
            report(stage, row)
    return runs


# The knobs an explanation reverts one at a time, and the value wasmtime (or the smallest host) would have.
def reverted(candidate: Candidate, goal: Goal, needs: ServingNeeds, pooled: list[tuple[int, str]],
             on_demand: list[str]) -> dict[str, Candidate]:
    """For every knob of ``candidate`` not at wasmtime's default, the candidate with that knob at the default,
    where that candidate fits the address-space budget (else the knob is explained by the budget, unmeasured)."""
    out: dict[str, Candidate] = {}
    def allowed(other: Candidate) -> bool:
        return (other.slots, other.layout) in pooled if other.pooled else other.layout in on_demand
    if candidate.pooled:
        alternative = Candidate("on-demand", 0, candidate.layout, cow=candidate.cow, pre=candidate.pre, cache_size=candidate.cache_size,
                                reuse=candidate.reuse, snapshot=candidate.snapshot)
        if allowed(alternative):
            out["allocator"] = alternative
        if candidate.slots > goal.concurrency and allowed(candidate.replace(slots=goal.concurrency)):
            # A decommit batch as large as the pool holds every freed slot back until it fills: the smaller pool keeps a
            # smaller batch, or none, so that the comparison is of slots, not of an exhausted pool.
            batch = candidate.decommit_batch if candidate.decommit_batch < goal.concurrency else 1
            out["slots"] = candidate.replace(slots=goal.concurrency, decommit_batch=batch)
        for knob in ("keep_resident", "table_keep_resident", "warm_slots", "decommit_batch"):
            if getattr(candidate, knob) != WASMTIME_DEFAULTS[knob]:
                out[knob] = candidate.replace(**{knob: WASMTIME_DEFAULTS[knob]})
    if candidate.layout != "default":
        other = candidate.replace(layout="default")
        if allowed(other):
            out["layout"] = other
    for knob in ("cow", "pre", "reuse", "snapshot"):
        if getattr(candidate, knob) != WASMTIME_DEFAULTS[knob]:
            out[knob] = candidate.replace(**{knob: WASMTIME_DEFAULTS[knob]})
    if len(goal.workloads) > 1 and candidate.cache_size < len(goal.workloads):
        out["cache_size"] = candidate.replace(cache_size=len(goal.workloads))
    return out


def untouched(candidate: Candidate, neighbours: dict[str, Candidate]) -> list[str]:
    """Knobs the explanation did not measure: at wasmtime's default, or whose default the budget rules out."""
    knobs = ["allocator", "layout", "cow", "pre"] + (["keep_resident", "table_keep_resident", "warm_slots", "decommit_batch"]
                                                     if candidate.pooled else [])
    return [k for k in knobs if k not in neighbours]

