"""``wasmlab advise``: the pool and engine settings that meet a latency target within a memory budget, measured.

=========================== ==============================================================================
module                      its one job
=========================== ==============================================================================
:mod:`~.needs`              what serving the guests needs from a pool (``inspect``: the memory a request grows to)
:mod:`~.space`              a candidate (one choice per knob), its flags, its reserved address space, the knobs
:mod:`~.trials`             one candidate measured under the concurrency, in a child process
:mod:`~.summary`            one candidate over its runs: medians, worst and best p99, whether it meets the goal
:mod:`~.search`             Optuna's multi-objective search, re-measurement of the front, each knob's measured effect
:mod:`~.claim`              the recommendation's fresh runs: the figures stated, how, the command that re-measures them
:mod:`~.record`             the trials and provenance ``--out`` keeps, on a finish or an interrupt (marked partial)
:mod:`~.snippets`           the settings as code to paste: Rust, ``wasmtime serve``, Spin, the lab's flags
:mod:`~.advice`             the result: recommendation, reasons, Pareto front, rendering, the binding constraint
=========================== ==============================================================================
"""
