"""What the ``models`` command-line handlers share: exit codes and logging setup."""

from __future__ import annotations

import logging

EXIT_OK = 0
EXIT_ERROR = 2
"""Exit code of a command that failed with a ``ModelsError`` (the log says why)."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def ensure_logging() -> None:
    """Log INFO and above to stderr unless the caller configured logging already (stdout
    stays free for results such as ``--json``)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
