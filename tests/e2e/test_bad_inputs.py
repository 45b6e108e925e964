"""Every bad input a user can give: one clear line naming the bad value and what is allowed, exit
status 2, no traceback, and results already on disk left as they were.  docs/bad-inputs.md's table lists
the same rows (a test below keeps them in step).

The cases run in this process through click's ``CliRunner`` (a process per case cost two minutes on a
busy machine and proved nothing more); a few of each kind (a bad flag, a bad file, a value that would
take a process down) also run as the real command in a child process, which is what a user starts."""

from __future__ import annotations

import hashlib
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from click.testing import CliRunner

from wasmlab.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEED_WAT = '(module (memory 1) (func (export "run") (param i32) (result i32) local.get 0 i32.const 1 i32.add))'


def _files(tmp: Path) -> None:
    (tmp / "not-wasm.wasm").write_text("this is text, not WebAssembly\n")
    seed = bytes(wasmtime.wat2wasm(SEED_WAT))
    (tmp / "seed.wasm").write_bytes(seed)
    (tmp / "truncated.wasm").write_bytes(seed[:20])
    (tmp / "float.wasm").write_bytes(bytes(wasmtime.wat2wasm('(module (func (export "run") (param f32) (result f32) local.get 0))')))
    (tmp / "component.wasm").write_bytes(bytes(wasmtime.wat2wasm(
        '(component (import "host-log" (func (param "msg" u32))) (core module $m (func (export "f") (param i32) (result i32) local.get 0))'
        ' (core instance $i (instantiate $m)) (func (export "run") (param "x" u32) (result u32) (canon lift (core func $i "f"))))')))
    (tmp / "wasi.wasm").write_bytes(bytes(wasmtime.wat2wasm(
        '(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (memory (export "memory") 1) (func (export "_start")))')))
    (tmp / "two-calls.wasm").write_bytes(bytes(wasmtime.wat2wasm(
        '(component (core module $m (func (export "f") (result i32) i32.const 1)) (core instance $i (instantiate $m))'
        ' (func (export "run") (result u32) (canon lift (core func $i "f"))))')))
    (tmp / "two-calls.yaml").write_text("module: two-calls.wasm\nsteps:\n  - invoke: run()\n  - invoke: run()\n")
    (tmp / "imports.wasm").write_bytes(bytes(wasmtime.wat2wasm('(module (import "env" "clock" (func)) (func (export "run")))')))
    # A spec names its notebook relative to the folder above its own, as in notebooks/sweeps/.
    (tmp / "notebooks" / "sweeps").mkdir(parents=True)
    import shutil

    shutil.copy(ROOT / "notebooks" / "01_seed_reproduction.ipynb", tmp / "notebooks")
    (tmp / "notebooks" / "sweeps" / "spec-key.yaml").write_text("name: s\nnotebook: 01_seed_reproduction.ipynb\ngird: {slots: [1]}\n")
    (tmp / "notebooks" / "sweeps" / "spec-param.yaml").write_text("name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {slotz: 4}\n")
    (tmp / "a-file").write_text("x")
    (tmp / "empty-folder").mkdir()
    (tmp / "bad.wat").write_text('(module\n  (func (export "run") (result i32)\n    i32.const 1\n    i32.bogus))\n')
    recipes = {"missing-key.yaml": "modul: seed.wasm\n", "list.yaml": "- module: seed.wasm\n", "not-yaml.yaml": "module: [unclosed\n",
               "bad-step.yaml": "module: seed.wasm\nsteps:\n  - frobnicate: 1\n",
               "imports-list.yaml": "module: seed.wasm\nimports: [1]\nsteps:\n  - invoke: run(1)\n",
               "repeat-huge.yaml": "module: seed.wasm\nsteps:\n  - write: {at: 0, repeat: {byte: 1, count: 1099511627776}}\n",
               "init-args.yaml": "module: seed.wasm\ninit: run\n",
               "stdout-file.yaml": "module: wasi.wasm\nexpect: {stdout_file: wasi.stdout.expected}\n", "init-number.yaml": "module: seed.wasm\ninit: 42\n",
               "init-missing.yaml": "module: seed.wasm\ninit: setup\n",
               "int-huge.yaml": "module: seed.wasm\nsteps:\n  - call: run\n    args: [18446744073709551616]\n"}
    for name, text in recipes.items():
        (tmp / name).write_text(text)
    specs = {"spec-tab.yaml": "name: s\n\tnotebook: x\n", "spec-noname.yaml": "notebook: 01_seed_reproduction.ipynb\n",
             "spec-reps.yaml": "name: s\nnotebook: 01_seed_reproduction.ipynb\nreplicates: many\n", "spec-empty.yaml": "",
             "spec-huge.yaml": "name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {requests: 1000000000000}\n",
             "spec-slots.yaml": "name: s\nnotebook: 01_seed_reproduction.ipynb\ngrid: {slots: [2, 0]}\n",
             "spec-preset.yaml": "name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {preset: nginx}\n",
             "spec-points.yaml": "name: s\nnotebook: 01_seed_reproduction.ipynb\nreplicates: 1000\ngrid: {slots: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "
                                 "requests: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}\n",
             "spec-out.yaml": "name: s\nnotebook: 01_seed_reproduction.ipynb\nout: 7\n"}
    for name, text in specs.items():
        (tmp / "notebooks" / "sweeps" / name).write_text(text)
    import pandas as pd

    # Two runs with nothing in common (another workload, another variant), as compare reads them.
    for name, workload, variant in (("run-a", "seed", "cached"), ("run-b", "trap", "pooled")):
        (tmp / name).mkdir()
        pd.DataFrame({"workload": [workload], "variant": [variant], "call_path": ["lean"], "status": ["ok"],
                      "latency_us_mean": [5.0]}).to_parquet(tmp / name / "summary.parquet")


def _small_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


R = ["reproduce", "--requests", "20", "--repeats", "1", "--warmup", "2", "--out", "previous"]

# (what, arguments, what the user sees)
BAD_INPUTS = [
    ("a file that is not WebAssembly", [*R, "--workload", "not-wasm.wasm"], "workload file 'not-wasm.wasm' is not WebAssembly"),
    ("a truncated module", [*R, "--workload", "truncated.wasm"], "workload file 'truncated.wasm' is not a valid module"),
    ("a missing export", [*R, "--workload", "seed.wasm", "--entry", "handle"], "export of seed.wasm 'handle' is not allowed; allowed: run"),
    ("the wrong number of arguments", [*R, "--workload", "seed.wasm", "--args", "1,2"], "export 'run' of seed.wasm takes 1 argument(s), got 2"),
    ("an argument that is not an integer", [*R, "--workload", "seed.wasm", "--args", "abc"], "--args 'abc' is not a list of integers"),
    ("an export of a type the lab cannot call", [*R, "--workload", "float.wasm"], "type of export 'run' of float.wasm 'f32' is not allowed; allowed: i32, i64"),
    ("an import the lab cannot satisfy", [*R, "--workload", "imports.wasm"], "module 'imports.wasm' has an import the lab cannot satisfy: module imports `env::clock`, which nothing defines"),
    ("a component import the lab cannot satisfy", [*R, "--workload", "component.wasm", "--args", "1"],
     "component 'component.wasm' has an import the lab cannot satisfy: component imports function `host-log`"),
    ("a pool knob too small for a component", [*R, "--workload", "middleware", "--pool", "max_core_instances_per_component=0"],
     "pool.max_core_instances_per_component = 0 is too small for component 'middleware', which needs 1; allowed: "
     "--pool max_core_instances_per_component=1 or more"),
    ("an unknown middleware request", [*R, "--workload", "middleware:request=bogus"],
     "middleware request 'bogus' is not allowed; allowed: auth-missing, auth-ok, public, response-200, response-500"),
    ("a middleware parameter that is not an integer", [*R, "--workload", "middleware:headers=many"],
     "workload 'middleware' parameter headers='many' is not an integer"),
    ("negative pool slots", [*R, "--slots", "-3"], "pool.slots = -3 is out of range; allowed: an integer >= 1"),
    ("a max memory size below the module's minimum", [*R, "--workload", "data-heavy:kib=256", "--pool", "max_memory_size=64KiB",
                                                      "--variants", "pooled+cached"], "does not compile for variant 'pooled+cached': module memory does not fit"),
    ("a max memory size above the memory reservation", [*R, "--engine", "memory_reservation=1MiB"], "pool.max_memory_size = 4294967296 exceeds engine.memory_reservation = 1048576"),
    ("a pool larger than the address space", [*R], "a pool of 20 memories reserves at least 80.7 GiB of address space"),
    ("cache size 0", [*R, "--cache-size", "0"], "cache.size = 0 is out of range; allowed: an integer >= 1"),
    ("an unknown cache policy", [*R, "--cache-policy", "mru"], "cache.policy 'mru' is not allowed; allowed: clear-when-full, fifo, lfu, lru, none, rr, ttl"),
    ("an unknown variant", [*R, "--variants", "baseline,turbo"], "variant 'turbo' is not allowed"),
    ("an instance reused zero times", [*R, "--variants", "pooled+cached+reuse0"],
     "variant 'pooled+cached+reuse0': 'reuse0' is not a reuse setting; allowed: reuseN with N an integer from 1 (a fresh instance per request) to 1000000"),
    ("instance reuse timed phase by phase", [*R, "--variants", "pooled+cached+reuse16", "--phases"],
     "variant 'pooled+cached+reuse16' reuses instances, which --phases cannot be combined with; allowed: --phases with variants without +reuseN, or +reuseN without --phases"),
    ("instance reuse of a component making several calls", [*R, "--variants", "pooled+cached+reuse16", "--workload", "two-calls.yaml"],
     "workload 'two-calls' is a component making several calls per request (a recipe's invoke steps: only the entry's result would be compared); instance reuse (+reuseN) serves components calling one export (allowed: +reuse1 for it)"),
    ("an unknown call path", [*R, "--call-path", "fast"], "call path 'fast' is not allowed; allowed: lean, api, native, both, all, or a comma list such as native,lean"),
    ("an unknown preset", [*R, "--preset", "nginx"], "preset 'nginx' is not allowed; allowed: seed, spin, wasmtime-serve"),
    ("an unknown workload", [*R, "--workload", "bogus"], "workload 'bogus' is not allowed"),
    ("an unknown pool knob", [*R, "--pool", "max_memory_sise=3"], "PoolConfig key 'max_memory_sise' is not allowed"),
    ("a size that is not a size", [*R, "--memory-limit", "lots"], "--memory-limit 'lots' is not a size"),
    ("zero requests", [*R, "--requests", "0"], "requests = 0 is out of range; allowed: an integer >= 1"),
    ("a CPU that is not there", [*R, "--cpu", "99"], "cpu = 99 is not available"),
    ("a guest that never returns, without a budget", [*R, "--workload", "infinite-loop"], "workload 'infinite-loop' never returns, so it needs a budget"),
    ("a results folder that is not writable", [*R[:-1], "a-file/run"], "results folder 'a-file/run' is not writable"),
    ("a directory that is not HOST::GUEST", [*R, "--workload", "seed.wasm", "--dir", "in"], "directory 'in' is not HOST::GUEST"),
    ("a preopened directory that does not exist", [*R, "--workload", "wasi.wasm", "--dir", "missing::/in"], "preopened directory 'missing' is not a directory"),
    ("WASI options for a module that does not import WASI", [*R, "--workload", "seed.wasm", "--argv", "seed -v"], "seed.wasm does not import WASI"),
    ("a sweep spec with an unknown key", ["sweep", "notebooks/sweeps/spec-key.yaml"], "gird: unknown key; allowed: name, notebook"),
    ("a sweep spec with an unknown parameter", ["sweep", "notebooks/sweeps/spec-param.yaml"], "parameters.slotz: the notebook has no parameter 'slotz'"),
    ("a folder that is not a results table, to compare", ["compare", "empty-folder", "empty-folder"], "'empty-folder' is not a results table"),
    ("a folder that is not a sweep, to report on", ["report", "empty-folder"], "'empty-folder' is not a finished sweep folder"),
    # Values the machine cannot hold: refused before a trace, a sample buffer or a pool is made (a MemoryError or a
    # Rust panic before).
    ("more requests than memory can record", [*R, "--requests", "1000000000000"],
     "requests = 1000000000000 is out of range: 1,000,000,000,000 requests x 1 repeats x 5 variants x 80 bytes per recorded request"),
    ("more repetitions than memory can record", [*R, "--repeats", "100000000000"],
     "repeats = 100000000000 is out of range: 20 requests x 100,000,000,000 repeats x 5 variants x 80 bytes per recorded request"),
    ("a pool larger than the 47-bit user address space", [*R, "--slots", "100000000"],
     "a pool of 100000000 memories reserves at least 403320312.5 GiB of address space"),
    ("a million worker threads", ["concurrency", "--threads", "1000000"], "threads = 1000000 is out of range; allowed: an integer from 1 to 1024"),
    ("more requests per worker than memory can record", ["concurrency", "--threads", "1024", "--requests", "10000000"],
     "requests = 10000000 is out of range: 10,000,000 requests x 1024 threads x 80 bytes per recorded request"),
    ("an offered rate that is not finite", ["concurrency", "--rate", "inf"], "rate = inf is out of range; allowed: a finite number of requests per second > 0"),
    ("a negative p99 bound", ["concurrency", "--rate", "100", "--p99-bound-us", "-1"], "Invalid value for '--p99-bound-us': -1.0 is not in the range x>0"),
    ("zero sweep workers", ["sweep", "notebooks/sweeps/spec-key.yaml", "--workers", "0"], "--workers 0 is out of range; allowed: 1 to 1024 points at once"),
    ("two runs with nothing in common, to compare", ["compare", "run-a", "run-b"],
     "'run-a' and 'run-b' have no (workload, variant, call path, parameters) in common"),
    ("a gate threshold that is not a number", ["compare", "run-a", "run-a", "--fail-above", "fast"],
     "--fail-above 'fast' is not a number; allowed: a finite ratio B/A > 0, e.g. 1.2"),
    ("a gate threshold of zero", ["compare", "run-a", "run-a", "--fail-below", "0"],
     "--fail-below '0' is out of range; allowed: a finite ratio B/A > 0, e.g. 1.2"),
    ("a gate threshold that is not finite", ["compare", "run-a", "run-a", "--fail-above", "nan"],
     "--fail-above 'nan' is out of range; allowed: a finite ratio B/A > 0, e.g. 1.2"),
    ("a directory as the workload", [*R, "--workload", "empty-folder"], "workload 'empty-folder' is a directory; allowed: a .wasm or .wat file"),
    ("a WAT syntax error", [*R, "--workload", "bad.wat"], "workload file 'bad.wat' is not valid WAT at line 4, column 5: unknown operator"),
    # What users mistype, each tried: click's own refusals come in the same one line.
    ("a count that is not an integer", [*R, "--requests", "1e6"], "Invalid value for '--requests': '1e6' is not a valid integer"),
    ("a misspelt flag", [*R, "--slotz", "3"], "No such option '--slotz'"),
    ("a missing argument", ["compare", "empty-folder"], "Missing argument 'B[@RELEASE]'"),
    ("a negative warm-up", [*R, "--warmup", "-1"], "warmup = -1 is out of range; allowed: an integer >= 0"),
    ("a warm-up that is neither a count nor auto", [*R, "--warmup", "auto5"],
     "warmup = 'auto5' is not a warm-up; allowed: an integer >= 0 (requests) or auto"),
    ("a time budget that is not a duration", [*R, "--time-budget", "1x"],
     "time budget '1x' is not a duration; allowed: a positive number of seconds such as 30, 30s, 2.5s, 500ms or 2m (0: none)"),
    ("a time budget with no warm-up to fit it from", [*R, "--warmup", "0", "--time-budget", "10s"],
     "time budget 10 s is fitted from the warm-up's requests; allowed: a budget with a warm-up of 1 or more requests"),
    ("an automatic warm-up where a fixed one is run", ["concurrency", "--warmup", "auto"],
     "warmup auto applies to wasmlab reproduce and its sweeps; allowed for wasmlab concurrency: an integer >= 0"),
    ("a missing expected-output file", [*R, "--workload", "wasi.wasm", "--stdout-file", "wasi.stdout.expected"],
     "--stdout-file 'wasi.stdout.expected' is not a readable file; allowed: a file of the output's exact bytes"),
    ("a recipe's missing expected-output file", [*R, "--recipe", "stdout-file.yaml"],
     "cannot be read (No such file or directory); allowed: a readable file of the output's exact bytes"),
    ("a guest path that climbs out", [*R, "--workload", "wasi.wasm", "--dir", ".::../up"],
     "directory '.::../up': guest: '../up' is not a guest path; allowed: an absolute path such as /out, or a relative one such as ."),
    ("zero fuel", [*R, "--fuel", "0"], "limits.fuel = 0 is out of range; allowed: an integer >= 1"),
    ("a deadline of zero", [*R, "--deadline-ms", "0"], "limits.deadline_ms = 0.0 is out of range; allowed: a number > 0"),
    ("a negative size", [*R, "--memory-limit", "-1KiB"], "--memory-limit '-1KiB' is not a size"),
    ("a stack smaller than a page", [*R, "--max-wasm-stack", "100"], "limits.max_wasm_stack = 100 is out of range; allowed: an integer >= 4096"),
    ("an unknown compiler", [*R, "--engine", "compiler=llvm"], "engine.compiler 'llvm' is not allowed; allowed: cranelift, winch"),
    ("an engine knob without a value", [*R, "--engine", "foo"], "--engine 'foo' is not KEY=VALUE"),
    ("a pool knob that is not a number", [*R, "--pool", "total_memories=abc"], "pool.total_memories = 'abc' is not an integer"),
    ("an unknown exhaustion policy", [*R, "--exhaustion", "later"], "limits.exhaustion 'later' is not allowed; allowed: fail, wait"),
    ("a workload parameter without a value", [*R, "--workload", "dirty-memory:kib"], "workload spec 'dirty-memory:kib': 'kib' is not key=value"),
    ("a negative workload parameter", [*R, "--workload", "dirty-memory:kib=-5"], "dirty-memory kib = -5 is out of range; allowed: an integer >= 1"),
    ("a stdin file that does not exist", [*R, "--workload", "wasi.wasm", "--stdin", "missing.txt"],
     "stdin file 'missing.txt' cannot be read (No such file or directory)"),
    ("a stdout pattern that is not a regular expression", [*R, "--workload", "wasi.wasm", "--stdout-match", "("],
     "stdout pattern '(' is not a regular expression"),
    ("an --invoke call that is not WAVE", [*R, "--workload", "seed.wasm", "--invoke", "run("], "recipe invoke at column 4: cannot read '('"),
    ("a recipe file that does not exist", [*R, "--recipe", "missing.yaml"], "recipe 'missing.yaml' cannot be read (No such file or directory)"),
    ("a recipe that is not YAML", [*R, "--recipe", "not-yaml.yaml"], "recipe 'not-yaml.yaml' is not YAML"),
    ("a recipe that is a list", [*R, "--recipe", "list.yaml"], "is not a mapping; allowed: keys module"),
    ("a recipe with a misspelt key", [*R, "--recipe", "missing-key.yaml"], "recipe key 'modul' is not allowed"),
    ("a recipe step of no known kind", [*R, "--recipe", "bad-step.yaml"],
     "recipe steps[0]: {'frobnicate': 1} is not a step; allowed: a mapping with one of call, write, read, invoke"),
    # Found by the fuzz tests (tests/fuzz/): each was an IndexError, a TypeError, a MemoryError or a hang before.
    ("a hex float in WAVE", [*R, "--workload", "seed.wasm", "--invoke", "run(0x1p4)"], "recipe invoke at column 8: cannot read 'p4)'"),
    ("recipe imports that are not a mapping", [*R, "--recipe", "imports-list.yaml"], "recipe imports: [1] is not a mapping; allowed: NAME: VALUE entries"),
    ("a recipe write repeated past 4 GiB", [*R, "--recipe", "repeat-huge.yaml"],
     "recipe steps[0].write.repeat: byte 1, count 1099511627776; allowed: a byte 0..255 and a count 0..4294967296"),
    # Snapshots (+snapshot, a recipe's init:): what has nothing to snapshot, and a start-up the lab cannot call.
    ("a snapshot of a module without a start-up export", [*R, "--workload", "seed", "--variants", "pooled+cached+snapshot"],
     "variant 'pooled+cached+snapshot': workload 'seed' has no start-up export to snapshot; allowed: +snapshot for a module exporting "
     "wizer.initialize, or a recipe naming its start-up (init: EXPORT)"),
    ("a snapshot of a component", [*R, "--workload", "component-seed", "--variants", "pooled+cached+snapshot"],
     "variant 'pooled+cached+snapshot': workload 'component-seed' is a component; allowed: +snapshot for a core module with a start-up "
     "export (Wizer snapshots core modules)"),
    ("an init that takes arguments", [*R, "--recipe", "init-args.yaml"],
     "recipe init: export 'run' takes 1 argument(s) and returns 1 value(s); allowed: a start-up function that takes no arguments and "
     "returns nothing"),
    ("an init that is not an export name", [*R, "--recipe", "init-number.yaml"],
     "recipe init: 42 is not an export name; allowed: the name of the module's start-up function, e.g. init: wizer.initialize"),
    ("an init naming no export", [*R, "--recipe", "init-missing.yaml"], "recipe init: export 'setup' is not allowed; allowed: run"),
    ("a recipe integer past 64 bits", [*R, "--recipe", "int-huge.yaml"],
     "recipe steps[0].args[0]: 18446744073709551616 does not fit in 64 bits; allowed: -9223372036854775808..9223372036854775807"),
    ("a sweep of more points than a sweep can list", ["sweep", "notebooks/sweeps/spec-points.yaml"],
     "grid: grid x zip x replicates make 120000 points; allowed: at most 100000"),
    ("a sweep output folder that is not a path", ["sweep", "notebooks/sweeps/spec-out.yaml"], "out: 7; allowed: a folder path"),
    ("a sweep spec that is not YAML", ["sweep", "notebooks/sweeps/spec-tab.yaml"], "notebooks/sweeps/spec-tab.yaml: not valid YAML"),
    ("a sweep spec without a name", ["sweep", "notebooks/sweeps/spec-noname.yaml"], "name: required, a non-empty string"),
    ("a sweep spec whose replicates are not a number", ["sweep", "notebooks/sweeps/spec-reps.yaml"],
     "replicates: 'many' is out of range; allowed: an integer >= 1"),
    ("an empty sweep spec", ["sweep", "notebooks/sweeps/spec-empty.yaml"], "empty; a sweep spec is a mapping"),
    ("a sweep spec that does not exist", ["sweep", "missing.yaml"], "missing.yaml: no such sweep spec"),
    # A point's Scenario values are checked as a command's flags are, before the first point runs.
    ("a sweep point with more requests than memory can record", ["sweep", "notebooks/sweeps/spec-huge.yaml"],
     "requests = 1000000000000 is out of range: 1,000,000,000,000 requests x 5 repeats x 5 variants"),
    ("a sweep grid with zero slots", ["sweep", "notebooks/sweeps/spec-slots.yaml"],
     "pool.slots = 0 is out of range; allowed: an integer >= 1"),
    ("a sweep spec with an unknown preset", ["sweep", "notebooks/sweeps/spec-preset.yaml"], "preset 'nginx' is not allowed; allowed: seed, spin"),
    ("a pool mode that does not exist", ["concurrency", "--pool-mode", "both"], "pool mode 'both' is not allowed; allowed: per-worker, shared"),
    ("a thread count that is not a number", ["concurrency", "--threads", "abc"], "--threads 'abc' is not a number"),
    ("an offered rate that is not a number", ["concurrency", "--rate", "nan"], "rate = nan is out of range; allowed: a finite number of requests per second > 0"),
    # wasmlab serve: refused before any server starts (and before the wasmtime CLI is looked up).
    ("an unknown serve preset", ["serve", "--preset", "nginx", "--no-save"], "preset 'nginx' is not allowed; allowed: seed, spin, wasmtime-serve"),
    ("a serve preset and advice at once", ["serve", "--preset", "seed", "--from-advice", "a-file", "--no-save"],
     "--preset seed and --from-advice a-file both give the server's -O options; allowed: one of them (explicit -O and --pooling win over either)"),
]


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    _files(tmp_path)
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "summary.parquet").write_bytes(b"results measured earlier")
    return tmp_path


def _digest(workdir: Path) -> str:
    return hashlib.sha256((workdir / "previous" / "summary.parquet").read_bytes()).hexdigest()


def _assert_one_line(status: int, stdout: str, stderr: str, message: str) -> None:
    lines = stderr.strip().splitlines()
    assert status == 2, (status, stderr, stdout)
    assert len(lines) == 1 and lines[0].startswith("wasmlab: error: "), stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in stderr and stdout == ""


# Needs a process of its own: the address-space limit that makes the pool too large would bind the test runner too.
OWN_PROCESS = {"a pool larger than the address space"}
IN_PROCESS = [row for row in BAD_INPUTS if row[0] not in OWN_PROCESS]
# One of each kind as the real command: a bad flag, a bad file, and a value that would take a process down.
END_TO_END = [row for row in BAD_INPUTS if row[0] in ("an unknown call path", "a file that is not WebAssembly", *OWN_PROCESS)]


@pytest.mark.parametrize("what, arguments, message", IN_PROCESS, ids=[row[0] for row in IN_PROCESS])
def test_bad_input_gives_one_line_status_2_and_keeps_earlier_results(workdir, monkeypatch, what, arguments, message):
    before = _digest(workdir)
    monkeypatch.chdir(workdir)
    done = CliRunner().invoke(main, arguments, catch_exceptions=True)
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    _assert_one_line(done.exit_code, done.stdout, done.stderr, message)
    assert _digest(workdir) == before


@pytest.mark.parametrize("what, arguments, message", END_TO_END, ids=[row[0] for row in END_TO_END])
def test_the_real_command_gives_one_line_status_2_and_keeps_earlier_results(workdir, what, arguments, message):
    before = _digest(workdir)
    done = subprocess.run([sys.executable, "-m", "wasmlab.cli", *arguments], cwd=workdir, capture_output=True, text=True, timeout=120,
                          preexec_fn=_small_address_space if what in OWN_PROCESS else None)
    _assert_one_line(done.returncode, done.stdout, done.stderr, message)
    assert _digest(workdir) == before


def test_the_docs_list_every_bad_input():
    page = (ROOT / "docs" / "bad-inputs.md").read_text()
    table = page[page.index("# Bad inputs"):]
    assert len(BAD_INPUTS) >= 15
    for what, _, message in BAD_INPUTS:
        assert f"| {what} |" in table, what
        assert message.replace("|", "\\|") in table, message
