"""Request recipes: what one request does on a fresh instance, said in YAML instead of Python.

A recipe names a module (a path relative to the recipe, or a catalog name), its WASI context (argv, stdin,
environment, read-only and fresh writable directories), the steps of a request and what the request must
end with.  Four request shapes need nothing else:

* a **command** (``_start``), checked by its exit code, its output and the files it writes;
* a **reactor** (``_initialize``, then calls that build guest state, e.g. argv in guest memory);
* a **library** (write input into a buffer the guest hands out, call, read the output back and check it);
* a plain **export** called with integer arguments, checked by its result.

Steps, in order (the small vocabulary, with names for integer results)::

    - call: NAME                 # an export; args are integers, names, NAME+N / NAME-N, {ptr_array: [...]}, {call: ...}
      args: [3, buf, buf+4, {ptr_array: [buf, buf+4]}]
      as: NAME                   # names its integer result for later steps
    - write: {at: EXPR, text: "..." | hex: "..." | file: PATH | repeat: {byte: 97, count: 16384}}
    - read: {at: EXPR, length: EXPR, as: NAME}   # bytes for ``expect.bytes``

``{ptr_array: [e1, e2, ...]}`` writes the i32 values into guest memory (at ``at:``, else in memory from the
recipe's ``allocator`` export, default ``malloc``) and passes its address.  Everything is checked before a
request is measured: keys (one line naming the key and what is allowed), exports and their arity, names
used before they are set; a dry request then catches writes past the memory's end
(:mod:`wasmlab.host.recipes`).

The package: :mod:`.model` (the frozen recipe and its steps), :mod:`.parse` (the YAML, one function per section, and
:mod:`.steps`, :mod:`.fields` for what the sections share), :mod:`.binding` (checked against the module's types and
turned into a :class:`~wasmlab.workloads.model.Workload`).  Every name is importable from here.
"""

from wasmlab.workloads.recipe.binding import check_module, component_recipe_workload, invoked_call, to_workload
from wasmlab.workloads.recipe.model import (
    DIGESTS,
    DIR_KEYS,
    EXPECT_KEYS,
    FILE_CHECKS,
    RECIPE_KEYS,
    WASI_KEYS,
    WRITE_SOURCES,
    Arg,
    Call,
    Dir,
    Expect,
    Expr,
    Invoke,
    PtrArray,
    Read,
    Recipe,
    Step,
    Write,
)
from wasmlab.workloads.recipe.parse import load, parse

__all__ = [
    "DIGESTS", "DIR_KEYS", "EXPECT_KEYS", "FILE_CHECKS", "RECIPE_KEYS", "WASI_KEYS", "WRITE_SOURCES", "Arg", "Call", "Dir", "Expect",
    "Expr", "Invoke", "PtrArray", "Read", "Recipe", "Step", "Write", "check_module", "component_recipe_workload", "invoked_call",
    "load", "parse", "to_workload",
]
