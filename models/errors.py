"""Exceptions of the ``models`` package.

Every error raised on purpose by ``models`` derives from :class:`ModelsError`, so a caller
(the CLI, the stream) can catch the package's failures without catching programming bugs.
Each docstring says what went wrong and what the operator should do about it.
"""

from __future__ import annotations


class ModelsError(Exception):
    """Root of every error the ``models`` package raises on purpose."""


class BenchmarkNotFoundError(ModelsError):
    """A benchmark directory or event file does not exist or lacks a required file.

    Fix: pass the directory holding ``train_sessions.txt`` and ``test.tsv`` (for example
    ``../shared/data/diginetica``), or an existing JSON-lines event file for ``--events``.
    """


class InvalidBenchmarkError(ModelsError):
    """A benchmark or event file exists but its content cannot be used.

    The message names the file and line. Fix the file (item ids must be positive integers,
    ``test.tsv`` lines must be ``prefix<TAB>target``) or regenerate it from the source data.
    """


class InvalidInputError(ModelsError):
    """A recommender or metric received arguments outside its contract.

    Typical causes: an item index outside ``0..n_items``, mismatched lengths of prefixes
    and targets, or a non-positive ``k``. The message says which argument; fix the caller.
    """


class NotFittedError(ModelsError):
    """A recommender was asked to score before ``fit`` was called.

    Fix: call ``fit(sessions, n_items)`` first (or load a trained model directory).
    """


class UnknownModelError(ModelsError):
    """A model spec is neither a known baseline name nor an existing model directory.

    Fix: pass one of the baseline names listed in the message, or the path of a directory
    written by ``streamrec train`` (it contains ``model.onnx`` and ``vocab.json``).
    """


class InvalidVocabularyError(ModelsError):
    """A vocabulary (``vocab.json``) is malformed: not ``{"items": [...]}``, a non-string or
    empty id, or a duplicated id.

    Fix: regenerate ``vocab.json`` with ``Vocabulary.save`` from the training data.
    """
