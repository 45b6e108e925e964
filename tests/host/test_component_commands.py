"""Component commands (issue 25): a WASI p2 component exporting ``wasi:cli/run``, written here in the component text
format, runs as a command on the lean, api and native paths with a core command's recipe keys (argv, env, dirs,
expect.exit, stdout/stderr): its outputs checked on every request (a wrong stdout, or one that changes between requests,
fails every path), argv, environment and preopens reaching it, and its exit status (run's err is 1, wasi:cli/exit's
status) checked against expect.exit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import wasmtime
import yaml

from tests.host.component_guests import LIBC, WASI_STREAMS, wasi_environment
from tests.host.component_guests import WASI_V as V
from wasmlab.config import CacheConfig, EngineConfig, PoolConfig
from wasmlab.errors import ResultMismatch
from wasmlab.host.outcomes import classify
from wasmlab.host.runtime import Runtime, build_runtimes
from wasmlab.workloads import load_workload
from wasmlab.workloads.files import from_path

PATHS = ("lean", "api", "native")
POOL = EngineConfig(pool=PoolConfig(slots=2, max_memory_size=1 << 20), memory_reservation=1 << 20)

def command_wat(ending: str = "ok") -> str:
    """A WASI p2 component command in the component text format: prints hello, its arguments after argv[0], its
    environment (K=V) and its preopened directories' names to stdout, one a line, warn to stderr, and echoes up to 64
    bytes of its stdin to stdout; then ends as
    ``ending`` says: ok (run returns ok), err (run returns err), exit (wasi:cli/exit with err), random (ok, after 8
    random bytes on stdout), file (ok, after writing a file into its first preopened directory), count (ok, after a
    counter kept in its memory, one byte from "1", its runs so far in this instance, on stdout)."""
    tail = {"ok": "i32.const 0", "err": "i32.const 1", "exit": "i32.const 1 call $exit i32.const 0", "random": "i32.const 0",
            "file": "i32.const 0", "count": "i32.const 0"}[ending]
    # ``count``: the byte at 320 ("0" in a fresh instance) counted up and printed: a kept instance prints 2, 3, ...
    count = ("i32.const 320 i32.const 320 i32.load8_u i32.const 1 i32.add i32.store8 local.get $os i32.const 320 i32.const 1 call $w"
             if ending == "count" else "")
    # ``file``: written\n into out.txt of its first preopened directory (create, truncate; open for writing), or err.
    file = ("i32.const 144 i32.load i32.load i32.const 0 i32.const 48 i32.const 7 i32.const 9 i32.const 2 i32.const 200 call $open-at "
            "i32.const 200 i32.load8_u if i32.const 1 return end "
            "i32.const 204 i32.load i32.const 56 i32.const 8 i64.const 0 i32.const 216 call $fwrite "
            "i32.const 216 i32.load8_u if i32.const 1 return end" if ending == "file" else "")
    # ``random``: 8 random bytes after the lines, so that no two requests print the same stdout.
    random = ("i64.const 8 i32.const 152 call $random local.get $os i32.const 152 i32.load i32.const 152 i32.load offset=4 call $w"
              if ending == "random" else "")
    return f"""(component
  {WASI_STREAMS}
  (import "wasi:cli/stdin@{V}" (instance $stdin
    (alias outer 1 $input-stream (type $is0))
    (export "input-stream" (type $is (eq $is0)))
    (export "get-stdin" (func (result (own $is))))))
  (import "wasi:cli/stdout@{V}" (instance $stdout
    (alias outer 1 $output-stream (type $os0))
    (export "output-stream" (type $os (eq $os0)))
    (export "get-stdout" (func (result (own $os))))))
  (import "wasi:cli/stderr@{V}" (instance $stderr
    (alias outer 1 $output-stream (type $os0))
    (export "output-stream" (type $os (eq $os0)))
    (export "get-stderr" (func (result (own $os))))))
  {wasi_environment()}
  (import "wasi:cli/exit@{V}" (instance $exit (export "exit" (func (param "status" (result))))))
  (import "wasi:random/random@{V}" (instance $random (export "get-random-bytes" (func (param "len" u64) (result (list u8))))))
  (import "wasi:filesystem/types@{V}" (instance $fstypes
    (export "descriptor" (type $d (sub resource)))
    (type $ec (enum "access" "would-block" "already" "bad-descriptor" "busy" "deadlock" "quota" "exist" "file-too-large" "illegal-byte-sequence" "in-progress" "interrupted" "invalid" "io" "is-directory" "loop" "too-many-links" "message-size" "name-too-long" "no-device" "no-entry" "no-lock" "insufficient-memory" "insufficient-space" "not-directory" "not-empty" "not-recoverable" "unsupported" "no-tty" "no-such-device" "overflow" "not-permitted" "pipe" "read-only" "invalid-seek" "text-file-busy" "cross-device"))
    (export "error-code" (type $ec2 (eq $ec)))
    (type $pf (flags "symlink-follow"))
    (export "path-flags" (type $pf2 (eq $pf)))
    (type $of (flags "create" "directory" "exclusive" "truncate"))
    (export "open-flags" (type $of2 (eq $of)))
    (type $df (flags "read" "write" "file-integrity-sync" "data-integrity-sync" "requested-write-sync" "mutate-directory"))
    (export "descriptor-flags" (type $df2 (eq $df)))
    (export "[method]descriptor.open-at" (func (param "self" (borrow $d)) (param "path-flags" $pf2) (param "path" string)
      (param "open-flags" $of2) (param "flags" $df2) (result (result (own $d) (error $ec2)))))
    (export "[method]descriptor.write" (func (param "self" (borrow $d)) (param "buffer" (list u8)) (param "offset" u64)
      (result (result u64 (error $ec2)))))))
  (alias export $fstypes "descriptor" (type $descriptor))
  (import "wasi:filesystem/preopens@{V}" (instance $preopens
    (alias outer 1 $descriptor (type $d0))
    (export "descriptor" (type $d (eq $d0)))
    (export "get-directories" (func (result (list (tuple (own $d) string)))))))

  {LIBC}
  (core func $get-stdout (canon lower (func $stdout "get-stdout")))
  (core func $get-stdin (canon lower (func $stdin "get-stdin")))
  (core func $read (canon lower (func $streams "[method]input-stream.blocking-read") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core func $get-stderr (canon lower (func $stderr "get-stderr")))
  (core func $write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush") (memory (core memory $libc "mem"))))
  (core func $get-args (canon lower (func $env "get-arguments") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core func $get-env (canon lower (func $env "get-environment") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core func $get-dirs (canon lower (func $preopens "get-directories") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core func $exit (canon lower (func $exit "exit")))
  (core func $open-at (canon lower (func $fstypes "[method]descriptor.open-at") (memory (core memory $libc "mem"))))
  (core func $fwrite (canon lower (func $fstypes "[method]descriptor.write") (memory (core memory $libc "mem"))))
  (core func $random (canon lower (func $random "get-random-bytes") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))

  (core module $main
    (import "libc" "mem" (memory 1))
    (import "host" "get-stdout" (func $get-stdout (result i32)))
    (import "host" "get-stderr" (func $get-stderr (result i32)))
    (import "host" "get-stdin" (func $get-stdin (result i32)))
    (import "host" "read" (func $read (param i32 i64 i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    (import "host" "get-args" (func $get-args (param i32)))
    (import "host" "get-env" (func $get-env (param i32)))
    (import "host" "get-dirs" (func $get-dirs (param i32)))
    (import "host" "exit" (func $exit (param i32)))
    (import "host" "random" (func $random (param i64 i32)))
    (import "host" "open-at" (func $open-at (param i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "fwrite" (func $fwrite (param i32 i32 i32 i64 i32)))
    (data (i32.const 16) "hello\\n")
    (data (i32.const 32) "\\n=")
    (data (i32.const 40) "warn\\n")
    (data (i32.const 48) "out.txt")
    (data (i32.const 56) "written\\n")
    (data (i32.const 320) "0")
    (func $w (param $os i32) (param $p i32) (param $n i32)
      local.get $os local.get $p local.get $n i32.const 64 call $write)
    ;; strings at `off` in each `stride`-byte element of the list at `ret` (its ptr, len), from element `from`: a line each
    (func $lines (param $os i32) (param $ret i32) (param $stride i32) (param $off i32) (param $from i32) (local $i i32) (local $e i32)
      local.get $from local.set $i
      block $done loop $next
        local.get $i local.get $ret i32.load offset=4 i32.ge_u br_if $done
        local.get $ret i32.load local.get $i local.get $stride i32.mul i32.add local.get $off i32.add local.set $e
        local.get $os local.get $e i32.load local.get $e i32.load offset=4 call $w
        local.get $os i32.const 32 i32.const 1 call $w
        local.get $i i32.const 1 i32.add local.set $i
        br $next end end)
    (func (export "run") (result i32) (local $os i32) (local $i i32) (local $e i32)
      call $get-stdout local.set $os
      local.get $os i32.const 16 i32.const 6 call $w
      i32.const 128 call $get-args
      local.get $os i32.const 128 i32.const 8 i32.const 0 i32.const 1 call $lines
      i32.const 136 call $get-env
      block $done loop $next
        local.get $i i32.const 136 i32.load offset=4 i32.ge_u br_if $done
        i32.const 136 i32.load local.get $i i32.const 16 i32.mul i32.add local.set $e
        local.get $os local.get $e i32.load local.get $e i32.load offset=4 call $w
        local.get $os i32.const 33 i32.const 1 call $w
        local.get $os local.get $e i32.load offset=8 local.get $e i32.load offset=12 call $w
        local.get $os i32.const 32 i32.const 1 call $w
        local.get $i i32.const 1 i32.add local.set $i
        br $next end end
      i32.const 144 call $get-dirs
      local.get $os i32.const 144 i32.const 12 i32.const 4 i32.const 0 call $lines
      call $get-stderr i32.const 40 i32.const 5 call $w
      ;; up to 64 bytes of stdin echoed to stdout (none when stdin is empty: the read ends closed)
      call $get-stdin i64.const 64 i32.const 232 call $read
      i32.const 232 i32.load8_u i32.eqz if local.get $os i32.const 236 i32.load i32.const 240 i32.load call $w end
      {random}
      {count}
      {file}
      {tail}))
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "host" (instance
      (export "get-stdout" (func $get-stdout)) (export "get-stderr" (func $get-stderr)) (export "write" (func $write))
      (export "get-stdin" (func $get-stdin)) (export "read" (func $read))
      (export "get-args" (func $get-args)) (export "get-env" (func $get-env)) (export "get-dirs" (func $get-dirs))
      (export "exit" (func $exit)) (export "random" (func $random))
      (export "open-at" (func $open-at)) (export "fwrite" (func $fwrite))))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $run (export "run" (func $run)))
  (export "wasi:cli/run@{V}" (instance $run)))"""


def write_command(folder: Path, ending: str = "ok", expect: dict[str, object] | None = None) -> Path:
    """The command with ``ending`` and a recipe running it with two arguments, an environment variable and ``folder``
    preopened at ``/sb``; the recipe's path."""
    (folder / f"{ending}.wasm").write_bytes(wasmtime.wat2wasm(command_wat(ending)))
    recipe = {"module": f"{ending}.wasm", "wasi": {"argv": ["prog", "a1", "b2"], "env": {"K": "v"}, "dirs": [{"host": str(folder), "guest": "/sb"}]}}
    if expect is not None:
        recipe["expect"] = expect
    path = folder / f"{ending}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@contextmanager
def runtime(path: str, recipe: Path) -> Iterator[Runtime]:
    """The recipe's pooled+cached runtime on ``path``, closed after."""
    rt = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [load_workload(str(recipe))], path)["pooled+cached"]
    try:
        yield rt
    finally:
        rt.close()


EXACT = {"stdout_match": "^hello\na1\nb2\nK=v\n/sb\n$", "stderr_match": "^warn\n$"}


def test_a_component_command_is_recognised_by_its_wasi_cli_run_export(tmp_path):
    w = load_workload(str(write_command(tmp_path, expect=EXACT)))
    assert (w.component, w.command, w.wasi, w.entry) == (True, True, True, "wasi:cli/run@0.2.0#run")
    assert (w.argv, w.recipe.env, w.preopens) == (("prog", "a1", "b2"), (("K", "v"),), ((str(tmp_path), "/sb"),))
    # Given by path (wasmlab reproduce --workload cmd.wasm), it is a command too, checked against its first request.
    by_path = from_path(tmp_path / "ok.wasm")
    assert by_path.command and by_path.check == "first-result"


@pytest.mark.parametrize("path", PATHS)
def test_argv_env_and_preopens_reach_the_command_and_its_outputs_are_checked_on_every_request(tmp_path, path):
    with runtime(path, write_command(tmp_path, expect=EXACT)) as rt:
        for _ in range(50):  # every request's stdout and stderr match the exact text (argv[1:], K=v, the preopen's name)
            rt.handle(0)


@pytest.mark.parametrize("path", PATHS)
def test_a_wrong_expected_stdout_fails_every_path(tmp_path, path):
    with runtime(path, write_command(tmp_path, expect={"stdout_match": "^hello\na1\nb2\nK=w\n"})) as rt:
        with pytest.raises(ResultMismatch, match="stdout does not match"):
            rt.handle(0)


@pytest.mark.parametrize("path", PATHS)
def test_a_stdout_that_changes_between_requests_fails_every_path(tmp_path, path):
    # No expectation: every request's outputs must equal the first request's (compared in C on the native path).
    with runtime(path, write_command(tmp_path, "random")) as rt:
        rt.handle(0)
        with pytest.raises(ResultMismatch, match="stdout"):
            for _ in range(3):
                rt.handle(0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("ending", ["err", "exit"])
def test_a_non_zero_exit_is_the_normal_end_when_expect_exit_says_so(tmp_path, path, ending):
    with runtime(path, write_command(tmp_path, ending, {"exit": 1, **EXACT})) as rt:
        for _ in range(5):
            rt.handle(0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("ending", ["err", "exit"])
def test_an_unexpected_exit_status_is_the_request_failure_exit_1(tmp_path, path, ending):
    with runtime(path, write_command(tmp_path, ending, EXACT)) as rt:
        with pytest.raises(wasmtime.WasmtimeError) as caught:
            rt.handle(0)
        assert classify(caught.value) == "exit(1)"


@pytest.mark.parametrize("path", PATHS)
def test_returning_ok_when_an_exit_is_expected_is_a_mismatch(tmp_path, path):
    with runtime(path, write_command(tmp_path, "ok", {"exit": 1})) as rt:
        with pytest.raises(ResultMismatch, match="exit"):
            rt.handle(0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("digest_of", "fails"), [(b"written\n", False), (b"written!\n", True)])
def test_the_files_a_command_writes_into_a_fresh_writable_directory_are_checked(tmp_path, path, digest_of, fails):
    (tmp_path / "file.wasm").write_bytes(wasmtime.wat2wasm(command_wat("file")))
    recipe = tmp_path / "file.yaml"
    recipe.write_text(yaml.safe_dump({"module": "file.wasm", "wasi": {"dirs": [{"guest": "/out", "writable": True}]},
                                      "expect": {"stdout_match": "^hello\n/out\n$",
                                                 "files": {"/out/out.txt": {"sha256": hashlib.sha256(digest_of).hexdigest()}}}}))
    with runtime(path, recipe) as rt:
        if fails:
            with pytest.raises(ResultMismatch, match="out.txt has sha256"):
                rt.handle(0)
        else:
            for _ in range(5):  # made fresh for every request: the guest's create-and-write finds it empty each time
                rt.handle(0)


@pytest.mark.parametrize("path", PATHS)
def test_stdin_reaches_the_command(tmp_path, path):
    (tmp_path / "input.txt").write_bytes(b"from stdin\n")
    recipe = write_command(tmp_path, expect={"stdout_match": "^hello\na1\nb2\nK=v\n/sb\nfrom stdin\n$"})
    data = yaml.safe_load(recipe.read_text())
    data["wasi"]["stdin"] = "input.txt"
    recipe.write_text(yaml.safe_dump(data))
    with runtime(path, recipe) as rt:
        for _ in range(5):
            rt.handle(0)
