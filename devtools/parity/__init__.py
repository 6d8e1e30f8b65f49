"""Train/serve parity, measured: held-out sessions replayed through a running worker
(embedded broker, real ``streamrec worker``), each live recommendation compared, case by
case, with the offline ranking of the same model for the same prefix.

    python -m devtools.parity --data-dir ../shared/data/yoochoose_100k [--sessions N]
        [--model MODEL_DIR] [--out DIR] [--exclude-recent]

:mod:`~devtools.parity.dataset` YooChoose (session-rec) files as sessions and event files ·
:mod:`~devtools.parity.replay` the lock-step live replay ·
:mod:`~devtools.parity.offline` the worker-equivalent and evaluation-protocol rankings ·
:mod:`~devtools.parity.compare` figures and disagreements by cause ·
:mod:`~devtools.parity.command` the whole run. See docs/parity.md for the measured figures.
"""

from devtools.parity.command import ParityOptions, run_parity

__all__ = ["ParityOptions", "run_parity"]
