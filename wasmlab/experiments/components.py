"""Notebook 07: where one component call's time goes, on one instance held in one store.

wasmtime-py's call is split into its parts (the function type read back on every call, arguments
converted to C values, the result converted back) and set against the lean call, whose arguments are
built once.  Both calls are the call paths' own: :func:`wasmlab.host.callpaths.lean_component.call`
with the same prebuilt trees, and wasmtime-py's ``Func`` with :func:`~wasmlab.host.callpaths.api_component.api_args`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import wasmtime
import wasmtime.component as wc

from wasmlab import capi
from wasmlab.errors import ConfigError, allowed
from wasmlab.host.callpaths import lean_component
from wasmlab.host.callpaths.api_component import api_args, api_func
from wasmlab.measure.calibrate import per_call_ns
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.scenario import Scenario
from wasmlab.measure.scenario import run as run_scenario
from wasmlab.measure.stats import paired_by_repetition
from wasmlab.workloads import introspect, load_workload
from wasmlab.workloads.model import Workload

# The parts of one call this experiment times, in the order of its table.
API_CALL = "api call (wasmtime-py)"
LEAN_CALL = "lean call (args built once, result read)"


class HeldComponent:
    """One instance of a component workload in one store on a default engine, its entry looked up both ways: as
    wasmtime-py's ``Func`` (with :func:`api_args`) and as a raw function with the lean path's prebuilt trees."""

    def __init__(self, w: Workload) -> None:
        engine = introspect.engine()  # one instance in one store: a default engine, as every type question uses
        component = introspect.component_types(w.wasm).component
        linker = wc.Linker(engine)
        if w.wasi:
            linker.add_wasip2()
        self.store = wasmtime.Store(engine)
        if w.wasi:
            self.store.set_wasi(wasmtime.WasiConfig())
        instance = linker.instantiate(self.store, component)
        func = api_func(self.store, instance, w.entry)  # a full name: INTERFACE#FUNCTION is found inside the interface
        index = introspect.export_index(component, w.entry)
        if func is None or index is None:
            raise ConfigError(f"component {w.name} has no function export {w.entry!r}")
        self.func = func
        self.arguments = api_args(w)
        self.slots = lean_component.ComponentSlots(w)
        self.raw_func = capi.component_func_t()
        self.raw_func_ref = ctypes.byref(self.raw_func)
        self.context = self.store._context()
        capi.typed_component_instance_get_func(ctypes.byref(instance._instance), self.context, index.ptr(), self.raw_func_ref)
        self.trap = capi.trap_slot()

    def close(self) -> None:
        self.slots.args.close()
        self.store.close()


def call_actions(held: HeldComponent) -> dict[str, Callable[[], Any]]:
    """The whole calls and wasmtime-py's per-call work before the call, each as an action to time."""
    store, func, arguments, slots = held.store, held.func, held.arguments, held.slots
    raw_func_ref, context, trap = held.raw_func_ref, held.context, held.trap

    def lean_call_only() -> None:
        lean_component.call(raw_func_ref, context, slots, trap)
        capi.component_val_delete(slots.result.ref)
        ctypes.memset(ctypes.addressof(slots.result.value), 0, ctypes.sizeof(capi.component_val_t))

    def lean_call() -> Any:
        lean_component.call(raw_func_ref, context, slots, trap)
        return slots.result.take()

    def api_call() -> Any:
        return func(store, *arguments)

    param_types = [t for _, t in func.type(store).params]

    def api_type_reflection() -> None:
        ty = func.type(store)
        ty.params, ty.result  # noqa: B018 - what Func.__call__ reads on every call

    scratch = (capi.component_val_t * max(len(param_types), 1))()

    def api_argument_conversion() -> None:
        for i, (ty, value) in enumerate(zip(param_types, arguments)):
            ty.convert_to_c(store, value, ctypes.pointer(scratch[i]))
        for i in range(len(param_types)):
            capi.component_val_delete(ctypes.byref(scratch[i]))

    return {"lean_call_only": lean_call_only, "lean_call": lean_call, "api_call": api_call,
            "api_type_reflection": api_type_reflection, "api_argument_conversion": api_argument_conversion}


def result_actions(held: HeldComponent, w: Workload, kept: Any) -> dict[str, Callable[[], None]]:
    """The two conversions of a result (wasmtime-py's and the lean path's), each timed on a clone of the held result
    ``kept``, and the clone alone (its cost is subtracted)."""
    result_type = held.func.type(held.store).result
    signature = w.signature
    copy = capi.component_val_t()

    def clone_only() -> None:
        capi.component_val_clone(ctypes.byref(kept), ctypes.byref(copy))
        capi.component_val_delete(ctypes.byref(copy))

    def api_result_conversion() -> None:
        capi.component_val_clone(ctypes.byref(kept), ctypes.byref(copy))
        if result_type is not None:
            result_type.convert_from_c(copy)  # frees the copy

    def lean_result_lift() -> None:
        capi.component_val_clone(ctypes.byref(kept), ctypes.byref(copy))
        if signature.result is not None:
            signature.result.lift(copy)
        capi.component_val_delete(ctypes.byref(copy))

    return {"clone_only": clone_only, "api_result_conversion": api_result_conversion, "lean_result_lift": lean_result_lift}


def held_result(held: HeldComponent) -> Any:
    """One raw call's result, kept (not freed) for the conversions to be timed on its clones."""
    slots = held.slots
    kept = capi.component_val_t()
    err = capi.component_func_call(held.raw_func_ref, held.context, slots.args.array, slots.args.size, ctypes.byref(kept), slots.result.count)
    if err:
        capi.raise_failure(err, held.trap)
    return kept


def component_call_costs(workload: str, calls: int = 200, repeats: int = 5) -> list[dict[str, Any]]:
    """Per part of one component call, µs per call (the median over ``repeats`` batches of ``calls`` calls).

    ``lean call`` is wasmtime's work plus the guest's (canonical ABI copies into and out of guest
    memory, the guest's own code); everything wasmtime-py's call costs beyond it is the binding.
    The two conversions of a result are timed on a clone of a held result, and the clone's own cost
    is measured and subtracted (the rows say so).  Every call's result is checked against the
    workload's expected value first, on both paths.
    """
    w = load_workload(workload)
    if not w.component or w.signature is None:
        raise allowed(workload, "workload for component call costs", ["a component (e.g. middleware, middleware-py)"])
    held = HeldComponent(w)
    calls_of = call_actions(held)
    kept = held_result(held)
    results_of = result_actions(held, w, kept)
    expected = w.expectation.result.value
    api_result = calls_of["api_call"]()
    checked = {"api": w.signature.result.from_api(api_result) if w.signature.result else None, "lean": calls_of["lean_call"]()}
    if expected is not None and not (checked["lean"] == expected == checked["api"]):
        raise ConfigError(f"{w.name}: the two call paths disagree with the expected result: {checked} vs {expected!r}")

    def us(action: Any) -> float:
        return per_call_ns(action, calls, repeats) / 1000

    clone_us = us(results_of["clone_only"])
    subtracted = f"timed on a clone of a held result, minus the clone's {clone_us:.2f} µs"
    parts = {
        API_CALL: (us(calls_of["api_call"]), ""),
        LEAN_CALL: (us(calls_of["lean_call"]), ""),
        "lean call without reading the result": (us(calls_of["lean_call_only"]), ""),
        "api: function type read back": (us(calls_of["api_type_reflection"]), ""),
        "api: arguments converted to C values": (us(calls_of["api_argument_conversion"]), ""),
        "api: result converted from C values": (max(us(results_of["api_result_conversion"]) - clone_us, 0.0), subtracted),
        "lean: result read": (max(us(results_of["lean_result_lift"]) - clone_us, 0.0), subtracted),
    }
    capi.component_val_delete(ctypes.byref(kept))
    held.close()
    base = {"workload": w.name, "entry": w.entry, "component_bytes": w.size_bytes, "calls": calls, "repeats": repeats,
            "clone_us_subtracted": clone_us, **{f"request_{k}": v for k, v in w.parameters.items()}}
    api_us = parts[API_CALL][0]
    return [{**base, "part": part, "us_per_call": value, "share_of_api_call": value / api_us, "how": how}
            for part, (value, how) in parts.items()]


def payload_grid(header_counts: Sequence[int], body_sizes: Sequence[int]) -> list[str]:
    """Hand-written middleware requests with each number of headers and each body size."""
    return [f"middleware:request=auth-ok,headers={h},body={b}" for h in header_counts for b in body_sizes]


def request_shapes(specs: Sequence[str], variant: str = "pooled+cached", call_paths: str = "native,lean,api",
                   requests: int = 300, repeats: int = 3, warmup: int = 30, slots: int = 4) -> tuple[pd.DataFrame, list[Measurement]]:
    """Whole requests of each middleware request shape in ``specs`` on each call path, one run per shape (the paths
    interleaved in it): per shape and path, the pooled p50/p99 and mean, and the path's ratio to the native path
    (per-repetition medians paired by repetition, with its 95% interval: ``report.text.path_table``)."""
    rows, runs = [], []
    for spec in specs:
        measurement = run_scenario(Scenario(workload=spec, variants=variant, call_path=call_paths, requests=requests,
                                            repeats=repeats, warmup=warmup, slots=slots))
        runs.append(measurement)
        parameters = load_workload(spec).parameters
        table = measurement.variants(None)
        served = table[table["variant"].str.split("@").str[0] == variant]
        labels = dict(zip(served["call_path"], served["variant"], strict=True))
        ok = measurement.summary[measurement.summary["status"] == "ok"]
        for _, row in served.iterrows():
            path = str(row["call_path"])
            # Each path's median per repetition over the native path's in the same repetition (the paths interleave).
            ratio = (paired_by_repetition(ok, labels[path], labels["native"], "latency_us_p50").as_tuple()
                     if "native" in labels else (float("nan"),) * 3)
            rows.append({"workload": spec, **{f"request_{k}": v for k, v in parameters.items()}, "call_path": path,
                         "p50_us": row["latency_us_p50"], "p99_us": row["latency_us_p99"], "mean_us": row["latency_us_mean"],
                         "repetitions": row["repetitions"], "requests": row["requests"], "over_native": ratio[0],
                         "over_native_low": ratio[1], "over_native_high": ratio[2]})
    return pd.DataFrame(rows), runs


# The seed as a core module, lifted as a component (exported at the top and inside an interface), then the smallest WASI
# command as a core module and as a WASI p2 component command.
BESIDE_CORE = ("seed", "component-seed", "component-seed:export=interface", "hello", "hello:kind=component")


def beside_core(specs: Sequence[str] = BESIDE_CORE, variant: str = "pooled+cached", call_path: str = "native", requests: int = 300,
                repeats: int = 3, warmup: int = 30, slots: int = 4) -> tuple[pd.DataFrame, list[Measurement]]:
    """What each workload in ``specs`` (empty: :data:`BESIDE_CORE`) costs per request on one path and variant, one run each (the first is the
    reference: a core module beside its component forms, a core command beside a component command): the pooled p50
    and p99, the lowest and highest per-repetition p50 (how much it moved between repetitions), and its p50 over the
    first's.  The runs are separate, so the ratios carry no paired interval; the spread of the p50s says how sure."""
    rows, runs = [], []
    for spec in specs or BESIDE_CORE:
        measurement = run_scenario(Scenario(workload=spec, variants=variant, call_path=call_path, requests=requests,
                                            repeats=repeats, warmup=warmup, slots=slots))
        runs.append(measurement)
        workload = load_workload(spec)
        row = measurement.variants(None).iloc[0]
        p50s = measurement.summary.loc[measurement.summary["status"] == "ok", "latency_us_p50"]
        rows.append({"workload": spec, "kind": workload.kind, "entry": workload.entry, "command": workload.command or workload.kind == "wasi-command",
                     "call_path": call_path, "variant": variant, "p50_us": row["latency_us_p50"], "p99_us": row["latency_us_p99"],
                     "p50_us_rep_min": p50s.min(), "p50_us_rep_max": p50s.max(), "repetitions": row["repetitions"],
                     "requests": row["requests"], "outcome_ok": row["outcome_ok"]})
    table = pd.DataFrame(rows)
    return table.assign(over_first=table["p50_us"] / table["p50_us"].iloc[0]), runs
