"""Development tools around the streamrec worker; never part of the runtime wheel or image.

``streamrec demo|bench|soak|broker`` run these from a source checkout (``streams.cli``
finds this package lazily; ``streamrec worker`` never imports it). The runtime packages
(``streams``, ``models``, ``schemas``) never import ``devtools``; ``devtools`` imports them.

:mod:`~devtools.broker` the embedded Tansu broker ·
:mod:`~devtools.processes` worker subprocesses, stopping process groups, ports, HTTP ·
:mod:`~devtools.isolation` per-run settings (own app id, topics, data dir and port) ·
:mod:`~devtools.machine` what machine a figure was measured on ·
:mod:`~devtools.demo` · :mod:`~devtools.bench` · :mod:`~devtools.soak` the three tools.
"""

from pathlib import Path

CHECKOUT_ROOT = Path(__file__).resolve().parents[1]
"""The source checkout these tools run from (the folder holding ``devtools/`` and
``streams/``): the working directory of the processes they start and the home of ``var/``."""
