"""The reporting layer: what a measurement looks like to a person.

Owns the text tables and JSON headline (:mod:`~.text`), comparing two results tables
(:mod:`~.compare`), sweep summaries (:mod:`~.sweeps`), the HTML report (:mod:`~.html`) and the
seaborn figures (:mod:`~.plots`), and what `wasmlab concurrency` prints (:mod:`~.concurrency`).  May import the measurement layer and everything below it; not
the experiments (its peer) nor the CLI.
"""
