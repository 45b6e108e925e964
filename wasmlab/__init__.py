"""wasmlab: measure what a WebAssembly host pays per request, and what pooling and caching save.

Packages by layer; each may import only its own layer and the layers below it
(``tests/test_layering.py`` walks every import and fails on a circle or an upward import):

=========================== ==========================================================================
layer                       what it owns
=========================== ==========================================================================
``cli``, ``sweep``,         the ``wasmlab`` command, the papermill sweep runner, the JupyterLab explorer
``explore``
``experiments``, ``report`` one module per notebook; text tables, compare, sweep summaries, HTML, plots
``measure``                 harness, calibration, hygiene, statistics, traces, results format, scenario
``host``                    engine and pool, module sources and cache, store set-up, call paths, runtime
``workloads``               the ``Workload`` model and every way to make one, with its registry
``config``, ``errors``,     validated knobs and presets, the lab's exceptions, where files live and how
``storage``, ``capi``       they are written, every raw wasmtime C declaration the lab uses
=========================== ==========================================================================
"""

__version__ = "0.1.0"
