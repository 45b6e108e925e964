"""A component whose exports take every kind of value the lab writes in WAVE, for the fuzz tests: each export's
arguments are spilled to guest memory (a 16-u32 pad makes them more than 16 flat values), and every export returns a
checksum of all the memory its lowering wrote (the spilled arguments, strings and lists), so the result depends on
every byte of the value and two call paths that lower a value differently answer differently."""

from __future__ import annotations

import wasmtime
import wasmtime.component as wc

from wasmlab.workloads.signature import Signature

PAD = "(tuple " + " ".join(["u32"] * 16) + ")"

# Named types (records, variants, enums) must be exported to appear in an export's signature.
TYPES = {
    "rec": '(record (field "name" string) (field "weight" u32) (field "bonus" (option u32)) (field "tags" (list string)))',
    "shape": '(variant (case "plain") (case "num" s64) (case "text" string) (case "nested" (option (option u8))))',
    "level": '(enum "low" "high" "none")',
}
EXPORTS = {
    "take-rec": "$rec",
    "take-shape": "$shape",
    "take-level": "$level",
    "take-result": "(result u64 (error string))",
    "take-bytes": "(list (list u8))",
    "take-scalars": "(tuple bool char s8 s16 s32 s64 u8 u16 f32 f64)",
    "take-deep": "(list (option (list (tuple string (list u32)))))",
    "take-strings": "(list string)",
}

# A memory and a realloc that hands it out upward from 1024 at the alignment asked, never freeing: the heap's top is
# $heap, so a guest can walk everything the canonical ABI wrote.
HEAP = '''    (memory (export "memory") 4)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $at i32)
      (local.set $at (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                              (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $at) (local.get 3)))
      (local.get $at))'''

_CORE = f"""(core module $m
{HEAP}
    (func (export "sum") (param $args i32) (result i32) (local $i i32) (local $acc i32)
      (local.set $i (i32.const 1024))
      (block (loop (br_if 1 (i32.ge_u (local.get $i) (global.get $heap)))
        (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (i32.load8_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1))) (br 0)))
      (local.get $acc)))"""


def component_head(core: str) -> list[str]:
    """A component's opening lines: ``core`` (a core module $m exporting memory and realloc) instantiated, its memory and
    realloc aliased for the canonical ABI, and every type of :data:`TYPES` declared and exported."""
    lines = ["(component", "  " + core, "  (core instance $i (instantiate $m))",
             '  (alias core export $i "memory" (core memory $mem))', '  (alias core export $i "realloc" (core func $realloc))']
    for name, body in TYPES.items():
        lines += [f"  (type ${name}' {body})", f'  (export ${name} "{name}" (type ${name}\'))']
    return lines


def component_wat() -> str:
    """The component's text: every type of :data:`TYPES`, every export of :data:`EXPORTS`."""
    lines = component_head(_CORE)
    for name, param in EXPORTS.items():
        lines.append(f'  (func (export "{name}") (param "a" {param}) (param "pad" {PAD}) (result u32) '
                     '(canon lift (core func $i "sum") (memory $mem) (realloc $realloc) string-encoding=utf8))')
    return "\n".join(lines) + ")"


def signatures() -> dict[str, Signature]:
    """Each export's signature, read from the compiled component as the lab reads any component's."""
    engine = wasmtime.Engine()
    component = wc.Component(engine, bytes(wasmtime.wat2wasm(component_wat())))
    return {name: Signature.of(export.ty) for name, export in component.type.exports(engine).items()
            if name in EXPORTS}
