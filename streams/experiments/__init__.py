"""Experiment reports: how each variant of an A/B experiment did, read from the attribution
log (the feedback topic).

* :mod:`~streams.experiments.stats`: rates, Wilson intervals, the two-proportion z-test;
* :mod:`~streams.experiments.report`: served records and attributions, deduplicated and
  aggregated per variant, compared with the control (and read from the topic);
* :mod:`~streams.experiments.report_cli`: ``streamrec experiment report NAME [--json]``.

Experiments themselves (variants, traffic splits, shadows) are started and stopped on the
control topic (:mod:`schemas.control`); the worker writes the log (``streams.attribution``).
"""
