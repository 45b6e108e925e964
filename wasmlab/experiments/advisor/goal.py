"""What the host asks of the advisor (a :class:`Goal`) and how much it may measure to answer (an :class:`Effort`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wasmlab.errors import ConfigError

if TYPE_CHECKING:
    from wasmlab.measure.scenario import Scenario

CALL_PATHS = ("native", "lean")


@dataclass(frozen=True)
class Goal:
    """What the host needs: a p99 target at a concurrency, within memory budgets (None: no budget)."""

    workloads: tuple[str, ...]
    concurrency: int
    p99_us: float
    rss_budget: int | None = None
    address_space: int | None = None
    call_path: str = "native"
    trace: str = "repeat"
    zipf_s: float = 1.1
    # Instance reuse may be proposed (+reuseN): the host accepts that one request's state can reach the next, and a
    # candidate counts only if no reused request's result differed from a fresh instance's (carried over: 0).
    allow_reuse: bool = False

    def __post_init__(self) -> None:
        if self.call_path not in CALL_PATHS:
            raise ConfigError(f"call path {self.call_path!r} is not allowed for advise; allowed: {', '.join(CALL_PATHS)}")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ConfigError(f"concurrency = {self.concurrency!r} is out of range; allowed: an integer >= 1")
        if not self.p99_us > 0:
            raise ConfigError(f"p99 target = {self.p99_us!r} µs is out of range; allowed: a number > 0")
        for name in ("rss_budget", "address_space"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name.replace('_', ' ')} = {value!r} is out of range; allowed: a size > 0")
        if len(self.workloads) > 1 and self.trace == "repeat":
            raise ConfigError(f"{len(self.workloads)} workloads need a trace over them; allowed: --trace uniform or zipf[:s=S]")

    def violations(self, row: dict[str, Any]) -> dict[str, float]:
        """Constraints for the search, <= 0 where met, relative to each: the p99 target, then the budgets given."""
        out = {"p99": row["latency_us_p99"] / self.p99_us - 1}
        if self.rss_budget is not None:
            out["rss"] = row["rss_bytes"] / self.rss_budget - 1
        if self.address_space is not None:
            out["address_space"] = row["address_space_bytes"] / self.address_space - 1
        return out

    def within_budgets(self, row: dict[str, Any]) -> bool:
        """Whether a run kept to the memory budgets (whatever its latency)."""
        return all(v <= 0 for k, v in self.violations(row).items() if k != "p99")

    @property
    def trace_spec(self) -> str:
        """The trace as ``--trace`` takes it."""
        return f"zipf:s={self.zipf_s:g}" if self.trace == "zipf" else self.trace


@dataclass(frozen=True)
class Effort:
    """How much the advisor measures: the time budget, requests per worker and run, repetitions when confirming."""

    budget_s: float = 90.0
    requests: int = 2000
    repeats: int = 3
    seed: int = 0
    max_trials: int = 200


# A p99 is the 1% tail: at 10,000 requests per worker a run's p99 rests on at least 100 requests above it per worker,
# so the tail's rank is known to about 1/sqrt(100) = 10% (a binomial count); at the screening's 2,000 it is the 20th
# worst request, 22% either way, before any picking among candidates.
TAIL_SAMPLES = 100
TAIL_REQUESTS = int(TAIL_SAMPLES / 0.01)


def confirm_requests(effort: Effort) -> int:
    """Requests per worker in each confirmation and claim run: twice the screening's, and never below
    :data:`TAIL_REQUESTS`."""
    return max(2 * effort.requests, TAIL_REQUESTS)


def goal_from(workloads: list[str] | tuple[str, ...], concurrency: int, p99_us: float, rss_budget: str | int | None = None,
              address_space: str | int | None = None, call_path: str = "native", trace: str = "repeat",
              allow_reuse: bool = False) -> Goal:
    """A :class:`Goal` from what a command line or a notebook's parameters give: sizes as ``"8GiB"`` (empty: no budget),
    the trace as ``repeat``, ``uniform`` or ``zipf[:s=S]``."""
    from wasmlab.config import parse_size
    from wasmlab.measure.traces import parse_trace_spec

    distribution, zipf_s = parse_trace_spec(trace)
    return Goal(tuple(workloads), concurrency, float(p99_us),
                parse_size(rss_budget, "--rss-budget") if rss_budget not in (None, "") else None,
                parse_size(address_space, "--address-space") if address_space not in (None, "") else None,
                call_path, distribution, zipf_s, allow_reuse)


def goal_of(scenario: Scenario, concurrency: int, p99_us: float, rss_budget: int | None = None,
            address_space: int | None = None, allow_reuse: bool = False) -> Goal:
    """The :class:`Goal` for ``scenario``'s workloads (a multi-tenant host's tenants), call path and trace."""
    chosen = scenario.workload
    return Goal(chosen.specs(), concurrency, float(p99_us), rss_budget, address_space, scenario.call_path, chosen.trace, chosen.zipf_s,
                allow_reuse)


def effort_of(scenario: Scenario, budget_s: float) -> Effort:
    """The :class:`Effort` of ``scenario``'s measurement: requests per worker and run, repetitions, and its seed."""
    return Effort(budget_s=budget_s, requests=scenario.measurement.requests, repeats=scenario.measurement.repeats,
                  seed=scenario.workload.seed)
