"""The lean call path for core modules: the C calls wasmtime-py makes, issued directly.

Bare ctypes function objects (``capi``'s fast functions) with buffers prepared once per workload,
and ``wasmtime_func_call_unchecked`` (the export's type is checked once, when its module is first
compiled).  A request: get the compiled module, ``wasmtime_store_new``, instantiate
(``wasmtime_instance_new``, ``wasmtime_linker_instantiate`` for WASI or host imports, or
``wasmtime_instance_pre_instantiate``), ``wasmtime_instance_export_get``, the call, the result
check, ``wasmtime_store_delete``.  What it measures is the runtime, not the binding's conversions.

The request is written once, as :data:`REQUEST` below; the handler and its phased twin are compiled
from it, the twin with a ``perf_counter_ns`` stamp at each phase boundary and the handler without any,
so the phases of a phased request add up to the same work an unphased request does (the export is
looked up once, nothing is called through a helper that the handler does not call).
"""

from __future__ import annotations

import ctypes
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any

import wasmtime

from wasmlab import capi
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.base import Handlers, RequestParts, checked_block, learned_or_mismatch, mismatch
from wasmlab.host.modules import Compiled
from wasmlab.host.recipes import Outcome, RawTarget, arities, checker, run_steps
from wasmlab.host.store import WasiIO
from wasmlab.workloads.expectation import Expectation
from wasmlab.workloads.model import Workload
from wasmlab.workloads.recipe import Recipe

_MEMORY = b"memory"
_MEMORY_NAME_LEN = ctypes.c_size_t(len(_MEMORY))


class LeanSlots:
    """Per-workload buffers for the lean path, allocated once."""

    def __init__(self, workload: Workload) -> None:
        self.key = workload.sha256
        self.name = workload.entry.encode()
        self.name_len = ctypes.c_size_t(len(self.name))
        slots = max(len(workload.params), len(workload.results), 1)
        self.raw = (capi.val_raw_t * slots)()
        self.nraw = ctypes.c_size_t(slots)
        # Integer views of the 16-byte raw values: assigning an item is much cheaper
        # than building a union object per argument.
        self.words64 = (ctypes.c_int64 * (2 * slots)).from_buffer(self.raw)
        self.words32 = (ctypes.c_int32 * (4 * slots)).from_buffer(self.raw)
        # (word index, value) pairs; the call overwrites arguments with results, so they
        # are stored again before every call.
        self.arg_words = tuple((2 * i, value) for i, value in enumerate(workload.args))
        self.has_result = bool(workload.results)
        self.result_words = self.words64 if workload.results[:1] == ("i64",) else self.words32
        expectation = workload.expectation
        self.expectation = expectation
        self.expected = expectation.compared_with()
        self.first_result = expectation.same_as_first
        self.workload_name = workload.name
        self.wasi = workload.wasi
        self.linked = workload.linked
        self.io = WasiIO(workload) if workload.captures_output else None
        # A guest expected to exit with a status other than 0 fails when it returns normally.
        self.expected_exit = expectation.exit
        self.returning_fails = not expectation.exit_ok(None)
        # Whether a new store needs more than creating: a WASI context (or host imports) here, and
        # per-store limits, which ``bind`` adds once it knows them.  A plain request skips ``prepare``.
        self.prepares = workload.linked
        # A recipe's steps (bound by ``bind``), the stamps its phased requests fill, and the check of their outcome.
        self.steps: Callable[[capi.Ptr, list[int] | None], Outcome] | None = None
        self.step_stamps: list[int] | None = None
        self.check_outcome: Callable[[Outcome], None] | None = None


# One request on the lean path.  ``@k`` marks phase boundary k of :data:`PHASES`: the phased handler
# stamps there (``stamps[k] = clock()``), the plain handler has nothing there.  Every line is one
# crossing into wasmtime or work the request cannot skip; the rare cases (limits, WASI, a failed
# instantiation, a trap) go through the helpers.
REQUEST = """
def handle(index{stamps}):
    s = slots[index]
    @0
{get_module}
    @1
    store = store_new(engine_ptr, None, None)
    try:
        context = store_context(store)
        if s.prepares:
            prepare(store, context, s)
        @2
        if pre:
            err = pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref)
        elif s.linked:
            err = linker_instantiate(linker_ptr, context, compiled.module_ptr, instance_ref, trap_ref)
        else:
            err = instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref)
        if err or trap:
            instantiate_failed(compiled, context, s, err)
{call}
        @5
    finally:
        store_delete(store)
    @6
{check_output}{check_steps}    if s.expected is not None and result != s.expected:
        s.expected = learned_or_mismatch(s.workload_name, result, s.expected, s.first_result)
    @7
    return result
"""


# How a request calls its guest: one export with its arguments (``plain``), a recipe's steps (``steps``: they look
# up what they call, so the export-lookup phase is empty), or either by workload (``mixed``).
CALL_PLAIN = """        @3
        if not export_get(context, instance_ref, s.name, s.name_len, extern_ref):
            raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
        @4
        words = s.words64
        for i, value in s.arg_words:
            words[i] = value
        err = call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
        if err or trap:
            call_failed(context, err, s.expectation)
            result = None
        elif s.returning_fails:
            raise mismatch(s.workload_name, "exit 0", f"exit {s.expected_exit}")
        else:
            result = s.result_words[0] if s.has_result else None"""
CALL_STEPS = """        @3
        @4
        result = s.steps(context, {step_stamps})"""
CALL = {
    "plain": CALL_PLAIN,
    "steps": CALL_STEPS,
    "mixed": ("        if s.steps is not None:\n" + textwrap.indent(CALL_STEPS, "    ")
              + "\n        else:\n" + textwrap.indent(CALL_PLAIN, "    ")),
}
CHECK_STEPS = {"plain": "", "steps": "    s.check_outcome(result)\n",
               "mixed": "    if s.check_outcome is not None:\n        s.check_outcome(result)\n"}


# How a request gets its compiled module.  A cache other threads share is read under its lock, through
# ``get``; a lock-free one is read inline, so that a hit costs the cache's own lookup and a counter.
GET_MODULE = {
    "locked": "    compiled = cache_get(s.key, compile_, workloads[index])",
    "inline": """    try:
        compiled = cache_lookup(s.key)
    except KeyError:
        compiled = cache_get(s.key, compile_, workloads[index])
    else:
        cache_stats.hits += 1""",
}


# A WASI guest's output check (stdout, stderr, written files), in the request for the handlers that time nothing or stamp
# it as read_output; the block server (``checked_block``) serves without it and checks after the request's time.
CHECK_OUTPUT = """    if s.io is not None:
        s.io.check()
"""


def compile_request(namespace: dict[str, object], phased: bool, get_module: str = "locked", call: str = "plain",
                    check_output: bool = True) -> Callable[..., object]:
    """The request handler built from :data:`REQUEST` over ``namespace`` (its closure's names), with stamps
    when ``phased``, getting its module as :data:`GET_MODULE` ``[get_module]`` does, calling as :data:`CALL` ``[call]``,
    and checking a WASI guest's output (:data:`CHECK_OUTPUT`) when ``check_output``."""
    lines = []
    source = REQUEST.format(stamps=", stamps" if phased else "", get_module=GET_MODULE[get_module], call="{call}",
                            check_output="{check_output}", check_steps="{check_steps}")
    source = source.replace("{call}", CALL[call]).replace("{check_steps}", CHECK_STEPS[call])
    source = source.replace("{check_output}", CHECK_OUTPUT if check_output else "")
    source = source.replace("{step_stamps}", "s.step_stamps" if phased else "None")  # only a phased request stamps its steps
    for line in source.splitlines():
        marker = line.strip()
        if marker.startswith("@"):
            if phased:
                lines.append(line.replace(marker, f"stamps[{int(marker[1:])}] = clock()"))
            continue
        lines.append(line)
    scope: dict[str, Any] = dict(namespace)
    exec(compile("\n".join(lines), f"<wasmlab lean request{' (phased)' if phased else ''}>", "exec"), scope)
    handle: Callable[..., object] = scope["handle"]
    return handle


def bind_steps(s: LeanSlots, w: Workload, instance_ref: Any, step_stamps: list[int]) -> None:
    """A recipe's steps on the request's instance through the C API, the check of their outcome, and the list its
    phased requests stamp."""
    arity, returns = arities(w.recipe)
    target = RawTarget(w.recipe, arity, returns)
    recipe: Recipe = w.recipe

    def steps(context: capi.Ptr, stamps: list[int] | None) -> Outcome:
        return run_steps(recipe, target.bind(context, instance_ref), stamps)
    s.steps, s.check_outcome, s.step_stamps = steps, checker(w), step_stamps


def bind(parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:  # noqa: C901, PLR0915 - one closure per request shape, chosen once at bind time so a request branches on nothing
    """Handlers for the core modules among ``workloads`` (indices of components are not served)."""
    drivers = sorted({w.driver for w in workloads if w.driver})
    if drivers:
        raise ConfigError(f"library-style workloads ({', '.join(drivers)}) are driven through wasmtime-py's objects; "
                          f"allowed call path: api")
    engine_ptr = parts.engine.ptr()
    cache = parts.modules.cache
    cache_get, compile_ = cache.get, parts.modules.compile
    get_module = "inline" if cache.lock_free else "locked"
    retry = parts.waiting.retry
    workloads = list(workloads)
    slots = {i: LeanSlots(w) for i, w in enumerate(workloads) if not w.component}
    parts.cleanup.extend(s.io.close for s in slots.values() if s.io is not None)
    pre = parts.pre
    linker_ptr = parts.linkers.core.ptr() if parts.linkers.core is not None else None
    setup = parts.store.raw()
    for s in slots.values():
        s.prepares = s.prepares or setup is not None
    raise_failure = capi.raise_failure
    instance = capi.instance_t()
    instance_ref = ctypes.byref(instance)
    extern = capi.extern_t()
    extern_ref = ctypes.byref(extern)
    func_ref = ctypes.byref(extern, capi.EXTERN_OF_OFFSET)
    memory_extern = capi.extern_t()
    trap = capi.trap_slot()
    trap_ref = ctypes.byref(trap)
    no_imports = ctypes.c_size_t(0)

    def try_instantiate(compiled: Compiled, context: capi.Ptr, s: LeanSlots) -> None:
        if pre:
            err = capi.instance_pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref)
        elif s.linked:
            err = capi.linker_instantiate(linker_ptr, context, compiled.module_ptr, instance_ref, trap_ref)
        else:
            err = capi.instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref)
        if err or trap:
            raise_failure(err, trap)

    def instantiate_failed(compiled: Compiled, context: capi.Ptr, s: LeanSlots, err: capi.Ptr | None) -> None:
        """An instantiation that failed: raised as wasmtime's error, or retried under the ``wait`` policy."""
        try:
            raise_failure(err, trap)
        except wasmtime.WasmtimeError as exc:
            retry(lambda: try_instantiate(compiled, context, s), exc)

    def memory_bytes(context: capi.Ptr) -> int | None:
        if (capi.instance_export_get(context, instance_ref, _MEMORY, _MEMORY_NAME_LEN, ctypes.byref(memory_extern))
                and memory_extern.kind == capi.EXTERN_MEMORY):  # type: ignore[comparison-overlap]  # ctypes reads a c_uint8 field as int
            return int(capi.memory_data_size(context, ctypes.byref(memory_extern, capi.EXTERN_OF_OFFSET)))
        return None

    def call_failed(context: capi.Ptr, err: capi.Ptr | None, expectation: Expectation) -> None:
        """A call that trapped or exited: the expected exit is a normal end, anything else is raised."""
        try:
            raise_failure(err, trap)
        except wasmtime.ExitTrap as exc:
            if expectation.exit_ok(exc.code):
                return None
            raise
        except wasmtime.Trap as exc:
            exc.wasmlab_memory_bytes = memory_bytes(context)  # type: ignore[attr-defined]  # read by outcomes.classify
            raise

    def prepare(store: capi.Ptr, context: capi.Ptr, s: LeanSlots) -> None:
        """What a new store needs beyond creating: per-store limits, and a WASI context for WASI guests."""
        if setup is not None:
            setup(store, context)
        if s.wasi:
            err = capi.context_set_wasi(context, s.io.config()._consume() if s.io is not None else capi.wasi_config_new())
            if err:
                raise_failure(err, trap)

    namespace = {
        "slots": slots, "workloads": workloads, "cache_get": cache_get, "compile_": compile_, "engine_ptr": engine_ptr,
        "cache_lookup": cache.lookup, "cache_stats": cache.stats,
        "store_new": capi.store_new, "store_context": capi.store_context, "store_delete": capi.store_delete,
        "instance_new": capi.instance_new, "pre_instantiate": capi.instance_pre_instantiate,
        "linker_instantiate": capi.linker_instantiate, "export_get": capi.instance_export_get,
        "call_unchecked": capi.func_call_unchecked, "pre": pre, "linker_ptr": linker_ptr, "instance_ref": instance_ref,
        "extern_ref": extern_ref, "func_ref": func_ref, "trap": trap, "trap_ref": trap_ref, "no_imports": no_imports,
        "prepare": prepare, "instantiate_failed": instantiate_failed, "call_failed": call_failed, "mismatch": mismatch,
        "learned_or_mismatch": learned_or_mismatch,
        "ConfigError": ConfigError, "clock": time.perf_counter_ns,
    }
    stepped = [s for i, s in slots.items() if workloads[i].steps]
    call = "plain" if not stepped else "steps" if len(stepped) == len(slots) else "mixed"
    for i, s in slots.items():
        if workloads[i].steps:
            bind_steps(s, workloads[i], instance_ref, parts.step_stamps.setdefault(i, []))
    checks = {i: s.io.check for i, s in slots.items() if s.io is not None}
    serve = compile_request(namespace, False, get_module, call, check_output=False)
    return Handlers(compile_request(namespace, False, get_module, call), compile_request(namespace, True, get_module, call),
                    checked_block(serve, checks, parts), None, serve, checks)
