"""The measurement layer: runs request traces through runtimes and records what is needed to trust the figures.

Owns the harness (:mod:`~.harness`: warm-up, interleaved repetitions, timed blocks; :mod:`~.phased`: phases),
the harness's own calibration (:mod:`~.calibrate`), machine hygiene (:mod:`~.hygiene`), Linux's counters
(:mod:`~.linux_counters`), statistics (:mod:`~.stats`), request traces (:mod:`~.traces`), run metadata
(:mod:`~.metadata`), the immutable record of a run (:mod:`~.measurement`) and results format with its version
(:mod:`~.results`), one comparison end to end (:mod:`~.scenario`), and the one child-process protocol
(:mod:`~.child`) that isolation (:mod:`~.isolate`) and other releases (:mod:`~.release_run`) use.

May import the host layer and everything below it; nothing of the experiments, reports or CLI.
"""
