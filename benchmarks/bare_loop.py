"""The seed request as a bare loop: nothing but the six C calls and a timer pair, no lab in between.

An independent reference for the lab's pooled+cached lean figure: the same module (one 64 KiB page,
``run(x) = x + 1``), the same pooling engine as the lab's seed preset (20 slots), the module compiled
once, then per request ``wasmtime_store_new``, ``wasmtime_store_context``, ``wasmtime_instance_new``,
``wasmtime_instance_export_get``, ``wasmtime_func_call_unchecked`` and ``wasmtime_store_delete``, the
result checked.  Written against wasmtime-py's raw declarations on purpose, without wasmlab: it shares
no code with what it checks.

    python benchmarks/bare_loop.py --requests 1000 --repeats 5 --warmup 200 [--format json]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import statistics
import time
from collections.abc import Callable

import wasmtime
from wasmtime import _bindings as ffi
from wasmtime._ffi import dll

WAT = '(module (memory 1) (func (export "run") (param i32) (result i32) local.get 0 i32.const 1 i32.add))'


class Ptr(ctypes.c_void_p):
    """Keeps returned pointers ctypes objects (a plain c_void_p restype would give a truncatable int)."""


def raw(name: str, restype: object) -> ctypes._CFuncPtr:
    function = dll[name]
    function.restype = restype
    return function


def pooled_engine(slots: int = 20) -> wasmtime.Engine:
    config = wasmtime.Config()
    pool = ffi.wasmtime_pooling_allocation_config_new()
    for knob in ("total_core_instances", "total_memories", "total_tables", "total_stacks"):
        getattr(ffi, f"wasmtime_pooling_allocation_config_{knob}_set")(pool, slots)
    ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
    ffi.wasmtime_pooling_allocation_config_delete(pool)
    return wasmtime.Engine(config)


def build_block(slots: int = 20) -> Callable[[int, list[int]], None]:
    """``block(n, out)``: ``n`` bare requests on a pooled engine of ``slots`` slots, each one's ns in ``out``."""
    engine = pooled_engine(slots)
    module = wasmtime.Module(engine, wasmtime.wat2wasm(WAT))
    store_new, store_context, store_delete = raw("wasmtime_store_new", Ptr), raw("wasmtime_store_context", Ptr), raw("wasmtime_store_delete", None)
    instance_new, export_get = raw("wasmtime_instance_new", Ptr), raw("wasmtime_instance_export_get", ctypes.c_bool)
    call = raw("wasmtime_func_call_unchecked", Ptr)
    engine_ptr, module_ptr = engine.ptr(), module.ptr()
    instance = ffi.wasmtime_instance_t()
    instance_ref = ctypes.byref(instance)
    extern = ffi.wasmtime_extern_t()
    extern_ref, func_ref = ctypes.byref(extern), ctypes.byref(extern, ffi.wasmtime_extern_t.of.offset)
    values = (ffi.wasmtime_val_raw_t * 1)()
    words = (ctypes.c_int32 * 4).from_buffer(values)
    one = ctypes.c_size_t(1)
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    trap_ref = ctypes.byref(trap)
    name, name_len, no_imports = b"run", ctypes.c_size_t(3), ctypes.c_size_t(0)
    clock = time.perf_counter_ns

    def block(n: int, out: list[int]) -> None:
        keep = (engine, module)  # noqa: F841 - the engine and module live as long as the block
        for i in range(n):
            t0 = clock()
            store = store_new(engine_ptr, None, None)
            context = store_context(store)
            if instance_new(context, module_ptr, None, no_imports, instance_ref, trap_ref) or trap:
                raise SystemExit("instantiation failed")
            if not export_get(context, instance_ref, name, name_len, extern_ref):
                raise SystemExit("no export run")
            words[0] = 41
            if call(context, func_ref, values, one, trap_ref) or trap:
                raise SystemExit("call failed")
            result = words[0]
            store_delete(store)
            if result != 42:
                raise SystemExit(f"run(41) returned {result}")
            out[i] = clock() - t0

    return block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()

    block = build_block()
    block(args.warmup, [0] * args.warmup)
    means, p50s = [], []
    for _ in range(args.repeats):
        samples = [0] * args.requests
        gc.disable()
        try:
            block(args.requests, samples)
        finally:
            gc.enable()
        means.append(statistics.fmean(samples) / 1000)
        p50s.append(statistics.median(samples) / 1000)
    result = {"latency_us_mean": statistics.fmean(means), "latency_us_p50": statistics.median(p50s),
              "per_repetition_mean_us": means, "requests": args.requests, "repeats": args.repeats, "warmup": args.warmup,
              "wasmtime": wasmtime.__version__ if hasattr(wasmtime, "__version__") else "", "crossings_per_request": 6}
    if args.format == "json":
        print(json.dumps(result))
    else:
        print(f"bare loop, pooled + compiled once, 6 C calls per request: mean {result['latency_us_mean']:.2f} µs, "
              f"p50 {result['latency_us_p50']:.2f} µs ({args.repeats} x {args.requests} requests after {args.warmup} warm-up)")


if __name__ == "__main__":
    main()
