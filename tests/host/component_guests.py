"""Pieces of the test components written in the component text format, each written once: the bump allocator a
component's canonical ABI calls as ``realloc``, a core ``libc`` instance holding it, and the WASI p2 imports
(streams, environment) a command calls."""

WASI_V = "0.2.0"  # the WASI p2 version the test components import and export (wasmtime 50 links any 0.2.x)

# A core module's ``realloc`` (with its global): hands out memory upward from 4096, 8-byte aligned, never frees, as
# lifting a string or list into guest memory asks it to.  Below 4096 the guests keep their own fixed addresses.
BUMP_REALLOC = """(global $bump (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
      global.get $bump local.set $p
      global.get $bump local.get 3 i32.add i32.const 7 i32.add i32.const -8 i32.and global.set $bump
      local.get $p)"""

# A core instance ``$libc``: one page of memory exported as ``mem`` and the bump allocator, for ``canon lower`` of
# imports that return a string or a list (``(memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))``).
LIBC = f"""(core module $libc
    (memory (export "mem") 1)
    {BUMP_REALLOC})
  (core instance $libc (instantiate $libc))"""

# wasi:io's error and streams, with the stream types aliased as $output-stream and $input-stream for the
# wasi:cli/std* imports that hand them out.
WASI_STREAMS = f"""(import "wasi:io/error@{WASI_V}" (instance $ioerr (export "error" (type (sub resource)))))
  (alias export $ioerr "error" (type $error))
  (import "wasi:io/streams@{WASI_V}" (instance $streams
    (alias outer 1 $error (type $e0))
    (export "error" (type $err (eq $e0)))
    (export "output-stream" (type $os (sub resource)))
    (export "input-stream" (type $is (sub resource)))
    (type $se (variant (case "last-operation-failed" (own $err)) (case "closed")))
    (export "stream-error" (type $se2 (eq $se)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" (borrow $os)) (param "contents" (list u8)) (result (result (error $se2)))))
    (export "[method]input-stream.blocking-read"
      (func (param "self" (borrow $is)) (param "len" u64) (result (result (list u8) (error $se2)))))))
  (alias export $streams "output-stream" (type $output-stream))
  (alias export $streams "input-stream" (type $input-stream))"""


def wasi_environment(environment: bool = True) -> str:
    """wasi:cli/environment as instance ``$env``: get-arguments, and get-environment when ``environment``."""
    variables = '\n    (export "get-environment" (func (result (list (tuple string string)))))' if environment else ""
    return (f'(import "wasi:cli/environment@{WASI_V}" (instance $env\n    (export "get-arguments" (func (result (list string))))'
            f"{variables}))")
