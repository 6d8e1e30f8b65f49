"""The adapter that makes a neural session model a ``SessionRecommender``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.errors import InvalidInputError, NotFittedError
from models.neural.base import SessionModel
from models.neural.training import TrainSettings, train_model
from models.onnx_contract import pad_batch
from models.protocol import Session, SessionRecommender, check_item_range


class NeuralRecommender(SessionRecommender):
    """A neural model behind the ``SessionRecommender`` interface.

    ``fit`` builds the model for the catalogue, gives it ``item_vectors`` (the item text
    table, for text-aware architectures) and trains it with ``models.neural.training`` (a
    validation split of the given sessions drives early stopping); ``score`` runs the same
    inference path that is exported to ONNX, and ``rank`` is the shared
    :func:`models.protocol.top_k` of it.
    """

    def __init__(
        self,
        name: str,
        build: Callable[..., SessionModel],
        settings: TrainSettings | None = None,
        score_batch_size: int = 512,
        item_vectors: npt.NDArray[np.floating] | None = None,
        **config_overrides: Any,
    ) -> None:
        self.name = name
        self._build = build  # build(n_items, **config_overrides); picklable (module level)
        self._overrides = config_overrides
        self._settings = settings
        self._score_batch_size = score_batch_size
        self._item_vectors = item_vectors
        self.model: SessionModel | None = None
        self.n_items = 0

    def fit(self, sessions: Sequence[Session], n_items: int) -> None:
        settings = self._settings if self._settings is not None else TrainSettings()
        self.n_items = n_items
        torch.manual_seed(settings.seed)  # weights are initialised from the seed too
        self.model = self._build(n_items, **self._overrides)
        if self._item_vectors is not None:
            attach = getattr(self.model, "attach_text", None)
            if attach is None:
                raise InvalidInputError(f"{self.name} does not read item text vectors")
            attach(self._item_vectors)
        train_model(self.model, sessions, settings)

    def _require_model(self) -> SessionModel:
        if self.model is None:
            raise NotFittedError(f"{self.name}: call fit() before score() or rank()")
        return self.model

    @torch.no_grad()
    def score(self, prefixes: Sequence[Session]) -> npt.NDArray[np.float32]:
        model = self._require_model()
        check_item_range(prefixes, self.n_items)
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        out = np.empty((len(prefixes), self.n_items + 1), dtype=np.float32)
        try:
            for start in range(0, len(prefixes), self._score_batch_size):
                chunk = prefixes[start : start + self._score_batch_size]
                ids, lengths = pad_batch(chunk, model.config.max_seq_len)
                scores = model(
                    torch.from_numpy(ids).to(device), torch.from_numpy(lengths).to(device)
                )
                out[start : start + len(chunk)] = scores.float().cpu().numpy()
        finally:
            model.train(was_training)
        out[:, 0] = -np.inf
        return out
