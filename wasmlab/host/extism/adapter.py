"""The adapter through which Extism serves a core guest: a small module, generated per workload, that Extism calls.

Extism calls a plugin export with no parameters, reads a non-zero i32 return as an error code, and passes input and
output through its kernel (the ``extism:host/env`` imports).  A core guest's entry (``run(i32) -> i32``) cannot be
called that way, so each workload gets an adapter, the plugin's ``main`` module: it imports the entry from the guest
module (named :data:`GUEST` in the manifest, which Extism links by name for the main module's imports), calls it with
the workload's arguments, writes the result into Extism's output as 8 bytes little-endian (an i32 sign-extended:
``alloc`` + ``store_u64`` + ``output_set``) and returns 0.  The lab reads those bytes back and checks them in Python.
"""

from __future__ import annotations

import base64
import json

import wasmtime

from wasmlab.workloads.model import Workload

GUEST = "guest"
MAIN = "main"
EXPORT = "request"  # the adapter's export, the function Extism calls
OUTPUT_BYTES = 8


def adapter_wat(workload: Workload, result_offset: int = 0) -> str:
    """The adapter's text for ``workload``; ``result_offset`` is added to the guest's result before it is written (0,
    except in tests that plant an adapter writing a wrong value)."""
    params = " ".join(workload.params)
    results = " ".join(workload.results)
    signature = (f" (param {params})" if params else "") + (f" (result {results})" if results else "")
    arguments = " ".join(f"({kind}.const {int(value)})" for kind, value in zip(workload.params, workload.args))
    call = f"(call $entry {arguments})"
    if not workload.results:
        body = f"    {call}"
    else:
        value = f"(i64.extend_i32_s {call})" if workload.results[0] == "i32" else call
        if result_offset:
            value = f"(i64.add {value} (i64.const {result_offset}))"
        body = (f"    (local.set $offset (call $alloc (i64.const {OUTPUT_BYTES})))\n"
                f"    (call $store_u64 (local.get $offset) {value})\n"
                f"    (call $output_set (local.get $offset) (i64.const {OUTPUT_BYTES}))")
    return f"""(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "{GUEST}" {json.dumps(workload.entry)} (func $entry{signature}))
  (func (export "{EXPORT}") (result i32)
    (local $offset i64)
{body}
    (i32.const 0)))"""


def manifest(workload: Workload, result_offset: int = 0) -> bytes:
    """The Extism manifest (JSON bytes) of ``workload``'s plugin: the guest module and its adapter as ``main``."""
    adapter = bytes(wasmtime.wat2wasm(adapter_wat(workload, result_offset)))
    modules = [{"data": base64.b64encode(workload.wasm).decode(), "name": GUEST},
               {"data": base64.b64encode(adapter).decode(), "name": MAIN}]
    return json.dumps({"wasm": modules}).encode()


def decoded(output: bytes, workload: Workload) -> object:
    """The guest's result the adapter wrote into ``output`` (``None`` for an entry returning nothing); output of another
    length than the adapter writes is returned as it is, so the check reports it as the wrong result it is."""
    if not workload.results:
        return None if not output else output
    if len(output) != OUTPUT_BYTES:
        return output
    return int.from_bytes(output, "little", signed=True)
