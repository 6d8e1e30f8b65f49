"""The model lifecycle's control plane: which registry version is served, and which
experiment splits users, announced on the compacted control topic so every worker learns it
without a restart.

* :mod:`streams.control.topic`: read the whole topic once (:func:`read_control_snapshot`)
  and write one record (:func:`publish_control`), synchronously, for the commands;
* :mod:`streams.control.follow`: keep a worker's view current (:func:`follow_control`);
* :mod:`streams.control.cli_models`, :mod:`streams.control.cli_experiment`: the
  ``streamrec models`` and ``streamrec experiment`` commands.

The record format is :mod:`schemas.control`; the versions live in :mod:`models.registry`.
This package's errors are below (each says what to do); none of its modules imports PyTorch.
"""

from __future__ import annotations

from streams.errors import StreamrecError


class ControlTopicError(StreamrecError):
    """The control topic could not be read or written in time (the message says which and
    the broker's answer). Check that the broker at ``STREAMREC_BROKER_URL`` is reachable, that
    the topics exist (``streamrec topics create``; the control topic is
    ``STREAMREC_TOPIC_CONTROL``), and run the command again: it writes nothing unless the
    broker acknowledged it."""


class RegistryNotConfiguredError(StreamrecError):
    """The command needs the model registry and ``STREAMREC_MODEL_REGISTRY`` is unset: set it
    to the registry directory the workers share (e.g. the mounted volume)."""


class NoPreviousVersionError(StreamrecError):
    """``streamrec models rollback`` found nothing to go back to: no version was promoted
    before the current one. Promote a version explicitly (``streamrec models promote
    VERSION``; ``streamrec models list`` shows them)."""


class ExperimentConflictError(StreamrecError):
    """An experiment cannot start: another one is running (only one runs at a time; stop it
    with ``streamrec experiment stop NAME``), or the name was used before (names identify an
    experiment's results for good; choose a new one)."""


class UnknownExperimentError(StreamrecError):
    """No experiment of that name is on the control topic: the message lists the known ones
    (check the spelling; ``streamrec experiment start`` creates one)."""


class CommandUnavailableError(StreamrecError):
    """A ``streamrec`` command's implementation is missing from this installation (its module
    could not be imported): reinstall streamrec (``pip install -e .`` in a checkout, or the
    released package) so that it is complete."""
