"""Exceptions of the ``models`` package.

Every error raised on purpose by ``models`` derives from :class:`ModelsError`, itself a
:class:`streams.errors.StreamrecError` (the project's one root exception), so a caller can
catch the package's failures (``ModelsError``) or every deliberate streamrec failure
(``StreamrecError``) without catching programming bugs. Each docstring says what went wrong
and what the operator should do about it.

>>> from streams.errors import StreamrecError
>>> issubclass(ModelDirectoryError, ModelsError) and issubclass(ModelsError, StreamrecError)
True
"""

from __future__ import annotations

from streams.errors import StreamrecError


class ModelsError(StreamrecError):
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


class ModelDirectoryError(ModelsError):
    """A model directory is missing a file or holds inconsistent files.

    The message names the file. Fix: point to a directory written by ``streamrec train``
    (model.onnx, vocab.json, config.json, meta.json), or train and write it again.
    """


class ProviderUnavailableError(ModelsError):
    """``device="cuda"`` was requested but ONNX Runtime cannot use CUDA on this machine.

    Either this onnxruntime build lacks the CUDA provider, or the CUDA/cuDNN libraries or
    the GPU driver cannot be loaded. Fix: use ``device="auto"`` (falls back to CPU) or
    ``"cpu"``, or install the NVIDIA driver, CUDA 12 and cuDNN 9 libraries.
    """


class ExportParityError(ModelsError):
    """The ONNX graph does not score like the PyTorch model it was exported from.

    The export was deleted. This is a bug in the model's inference path (an operation the
    ONNX exporter translates differently, e.g. data-dependent shapes): fix the model, or
    report the architecture, opset and the figures in the message.
    """
