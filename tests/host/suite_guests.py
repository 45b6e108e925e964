"""Guests laid out as a standard suite's (Sightglass): a WASI command beside its ``*.input`` file and its
``*.stdout.expected`` / ``*.stderr.expected``, run with its folder preopened at guest ``.`` (the working directory)."""

from __future__ import annotations

from pathlib import Path

import yaml

# Prints the name of its first preopen (fd 3) and a newline on stderr, then copies ./x.input (path_open on that fd) to
# stdout, between calls of Sightglass's timing hooks (bench.start, bench.end; a recipe stubs them).  A failing WASI call
# exits 40 + its errno.
READER = """(module
  (import "bench" "start" (func $bench_start))
  (import "bench" "end" (func $bench_end))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "./x.input")
  (func $write (param $fd i32) (param $at i32) (param $len i32)
    (i32.store (i32.const 8) (local.get $at)) (i32.store (i32.const 12) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 8) (i32.const 1) (i32.const 16))))
  (func $check (param $err i32) (if (local.get $err) (then (call $proc_exit (i32.add (i32.const 40) (local.get $err))))))
  (func (export "_start") (local $len i32)
    (call $bench_start)
    (call $check (call $prestat_get (i32.const 3) (i32.const 48)))
    (local.set $len (i32.load (i32.const 52)))
    (call $check (call $prestat_dir_name (i32.const 3) (i32.const 256) (local.get $len)))
    (i32.store8 (i32.add (i32.const 256) (local.get $len)) (i32.const 10))
    (call $write (i32.const 2) (i32.const 256) (i32.add (local.get $len) (i32.const 1)))
    ;; rights: fd_read only (a read-only preopen refuses more)
    (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 9) (i32.const 0)
        (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 8) (i32.const 1024)) (i32.store (i32.const 12) (i32.const 60000))
    (call $check (call $fd_read (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 20)))
    (call $write (i32.const 1) (i32.const 1024) (i32.load (i32.const 20)))
    (drop (call $fd_close (i32.load (i32.const 0))))
    (call $bench_end)))"""
# The same without the timing hooks: a plain WASI command, for the command line's flags (which stub nothing).
PLAIN_READER = (READER.replace('  (import "bench" "start" (func $bench_start))\n  (import "bench" "end" (func $bench_end))\n', "")
                .replace("    (call $bench_start)\n", "").replace("\n    (call $bench_end)", ""))

# 200 bytes of input, five lines of 40: long enough that a check of only a prefix (64 bytes, say) misses its end.
INPUT = b"".join(f"line {k:02d} of the benchmark's input: 40 B.\n".encode() for k in range(5))


def suite_folder(folder: Path, stdout: bytes = INPUT, stderr: bytes = b".\n", guest: str = ".") -> Path:
    """A benchmark's folder as Sightglass lays it out (``reader.wat``, ``x.input``, ``reader.stdout.expected``,
    ``reader.stderr.expected``) and a recipe beside them preopening the folder at ``guest``; the recipe's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reader.wat").write_text(READER)
    (folder / "plain.wat").write_text(PLAIN_READER)
    (folder / "x.input").write_bytes(INPUT)
    (folder / "reader.stdout.expected").write_bytes(stdout)
    (folder / "reader.stderr.expected").write_bytes(stderr)
    recipe = {"module": "reader.wat", "imports": {"bench.start": 0, "bench.end": 0}, "wasi": {"dirs": [{"host": ".", "guest": guest}]},
              "expect": {"stdout_file": "reader.stdout.expected", "stderr_file": "reader.stderr.expected"}}
    path = folder / "reader.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# A request that spins ``ITERATIONS`` loop turns (tens of milliseconds here) and returns 7: a slow guest for warm-up.
SLOW = """(module
  (func (export "run") (result i32) (local $i i32)
    (loop $spin
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spin (i32.lt_u (local.get $i) (i32.const 20000000))))
    (i32.const 7)))"""
