"""The host layer: what a WebAssembly host does for each request, composed from named pieces.

Owns the engine and the pooling allocator (:mod:`~.engine`), pool sizing (:mod:`~.pool_sizing`),
variants (:mod:`~.variant`), where compiled modules come from (:mod:`~.modules`: compile, the memory
cache of :mod:`~.cache`, the disk artifacts of :mod:`~.artifacts`, ``InstancePre``), linkers
(:mod:`~.linking`), store set-up (:mod:`~.store`: limits, fuel, epoch deadline, WASI), the exhaustion
policy (:mod:`~.waiting`), request outcomes (:mod:`~.outcomes`), the lean component path's C values
(:mod:`~.component_values`), the call-path strategies and their registry (:mod:`~.callpaths`) and the
:class:`~.runtime.Runtime` that composes them.

May import :mod:`wasmlab.config`, :mod:`wasmlab.errors`, :mod:`wasmlab.storage`, :mod:`wasmlab.capi`,
:mod:`wasmlab.workloads` and itself; nothing that measures or reports.
"""
