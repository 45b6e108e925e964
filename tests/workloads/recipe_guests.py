"""Guests of the four request shapes recipes must drive, as WAT the tests assemble (nothing here is fetched), and the
helpers the recipe tests share: writing a recipe beside its guest, serving it on one runtime."""

from collections.abc import Iterator
from contextlib import contextmanager

# A WASI command that answers by exit code, as an SMT solver exits 10 for "sat": prints "sat" and exits 10.
EXIT_CODE = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "sat\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 10))))"""

# A WASI command that writes its output file, as a renderer writes /out/out.png: /out/result.txt holds "rendered\\n".
WRITER = """(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "result.txt")
  (data (i32.const 64) "rendered\\n")
  (func (export "_start") (local $err i32)
    ;; fd 3 is the first preopened directory; O_CREAT|O_TRUNC, rights to write
    (local.set $err (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 10) (i32.const 9)
                                     (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 0)))
    (if (local.get $err) (then (call $proc_exit (i32.add (i32.const 100) (local.get $err)))))
    (i32.store (i32.const 8) (i32.const 64)) (i32.store (i32.const 12) (i32.const 9))
    (drop (call $fd_write (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 16)))
    (drop (call $fd_close (i32.load (i32.const 0))))))"""

# The writer appending to /out/result.txt (O_CREAT, FDFLAGS_APPEND) instead of replacing it: what it leaves shows
# whether its directory started fresh (a reused one would grow with every request).
APPENDER = WRITER.replace("(i32.const 10) (i32.const 9)", "(i32.const 10) (i32.const 1)").replace(
    "(i64.const 0x1fffffff) (i32.const 0) (i32.const 0)", "(i64.const 0x1fffffff) (i32.const 1) (i32.const 0)")

# The writer writing nine random bytes (random_get) instead of "rendered\n": a file that differs on every request.
RANDOM_WRITER = WRITER.replace(
    '(import "wasi_snapshot_preview1" "proc_exit"',
    '(import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))\n'
    '  (import "wasi_snapshot_preview1" "proc_exit"').replace(
    "(i32.store (i32.const 8) (i32.const 64))", "(drop (call $random_get (i32.const 64) (i32.const 9))) (i32.store (i32.const 8) (i32.const 64))")

# A reactor: nothing works before _initialize; malloc hands out guest memory; init_argv takes argc and an array of
# pointers to NUL-terminated strings, as QuickJS's qjs_init_argv does; argv_total returns their total length.
REACTOR = """(module
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 1024))
  (global $total (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $ready (i32.const 1)) (global.set $heap (i32.const 1024)))
  (func (export "malloc") (param $n i32) (result i32) (local $at i32)
    (if (i32.eqz (global.get $ready)) (then unreachable))
    (local.set $at (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $at))
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block (loop (br_if 1 (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1))) (br 0)))
    (local.get $n))
  (func (export "init_argv") (param $argc i32) (param $argv i32) (result i32) (local $i i32)
    (if (i32.eqz (global.get $ready)) (then unreachable))
    (global.set $total (i32.const 0))
    (block (loop (br_if 1 (i32.ge_u (local.get $i) (local.get $argc)))
      (global.set $total (i32.add (global.get $total)
        (call $strlen (i32.load (i32.add (local.get $argv) (i32.shl (local.get $i) (i32.const 2)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br 0)))
    (i32.const 0))
  (func (export "argv_total") (result i32) (global.get $total)))"""

# A library: write input into the buffer get_buffer returns, transform(len) writes each byte XOR 0x5a into the buffer
# get_output returns (as a SHA-256 in WebAssembly fills its digest), read it back.
LIBRARY = """(module
  (memory (export "memory") 1)
  (func (export "get_buffer") (result i32) (i32.const 4096))
  (func (export "get_output") (result i32) (i32.const 32768))
  (func (export "transform") (param $n i32) (result i32) (local $i i32)
    (block (loop (br_if 1 (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (i32.const 32768) (local.get $i))
                  (i32.xor (i32.load8_u (i32.add (i32.const 4096) (local.get $i))) (i32.const 0x5a)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br 0)))
    (local.get $n)))"""


def write_recipe(folder, wat: str, body: dict, name: str = "guest") -> str:
    """``name.wat`` and the recipe ``name.yaml`` naming it (with ``body``) in ``folder``; the recipe's path."""
    import yaml

    (folder / f"{name}.wat").write_text(wat)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({"module": f"{name}.wat", **body}))
    return str(folder / f"{name}.yaml")


@contextmanager
def serving(workloads: list, call_path: str, variant: str = "pooled+cached") -> Iterator:
    """One runtime of ``variant`` for ``workloads`` on ``call_path`` (default engine and cache), closed afterwards."""
    from wasmlab.config import CacheConfig, EngineConfig
    from wasmlab.host.runtime import build_runtimes

    runtime = build_runtimes([variant], EngineConfig(), CacheConfig(), workloads, call_path)[variant]
    try:
        yield runtime
    finally:
        runtime.close()
