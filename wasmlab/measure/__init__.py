"""The measurement layer: runs request traces through runtimes and records what is needed to trust the figures.

Owns the harness (:mod:`~.harness`: warm-up, interleaved repetitions, timed blocks, phases), the
harness's own calibration (:mod:`~.calibrate`), machine hygiene (:mod:`~.hygiene`), statistics
(:mod:`~.stats`), request traces (:mod:`~.traces`), run metadata (:mod:`~.metadata`), the data model
(:mod:`~.measurement`) and results format with its version (:mod:`~.results`), one comparison end
to end (:mod:`~.scenario`) and child-process isolation (:mod:`~.isolate`).

May import the host layer and everything below it; nothing of the experiments, reports or CLI.
"""
