"""wasmlab: measure what a WebAssembly host pays per request, and what pooling and caching save.

Modules, one job each: ``config`` (validated knobs and presets), ``engine`` (the pooling
C API), ``cache`` (compiled-module cache policies), ``workloads``, ``traces``,
``runtime`` (variants and call paths), ``measure`` (the harness), ``stats``, ``lab``
(one scenario, end to end), ``report``, ``results``, ``plots`` and ``cli``.
"""

__version__ = "0.1.0"
