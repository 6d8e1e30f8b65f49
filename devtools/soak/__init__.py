"""Soak benchmark: a million synthetic users through one worker, resources sampled over time.

Not a test. ``streamrec soak`` starts an embedded broker (or uses ``--broker-url``), one
worker subprocess without a model, and a closed-loop producer that keeps a bounded backlog
ahead of the worker, so the figures measure the worker and not a queue in the broker. Every
few seconds it samples the worker's RSS, the broker's RSS, the RocksDB data directory's size
on disk and the events/s the state stage processed, prints a table row and finally writes
everything as JSON, with a summary that says whether RSS and throughput level off while disk
grows in proportion to users (bounded bytes per user).

:mod:`~devtools.soak.load` the synthetic user stream and its producer ·
:mod:`~devtools.soak.probe` RSS, disk usage and metric scraping ·
:mod:`~devtools.soak.run` the run itself (:func:`run_soak`) and its report ·
:mod:`~devtools.soak.command` the ``streamrec soak`` arguments.
"""

from devtools.soak.command import add_soak_arguments, run_soak_command
from devtools.soak.run import SoakConfig, SoakReport, run_soak

__all__ = ["SoakConfig", "SoakReport", "add_soak_arguments", "run_soak", "run_soak_command"]
