"""SessAttnText: SessAttn whose items are also known by their text.

Each item is represented by ``id embedding + projection of its frozen 512-d text vector``
(``models.text.item_vectors``: the multilingual sentence encoder's vector of "title.
category path. brand."). That one representation is used everywhere: for the items of a
history, for their co-occurrence neighbours, and as the output table every session vector
is scored against (cosine times a temperature, as SessAttn). So an item's score depends on
its text, not only on what was learnt about its id.

Cold items. An item that never occurs in the training sessions but has text is represented
by its text alone: its id embedding is masked to exactly zero (it would be an untrained
random vector) and it is left out of the training softmax (it is not in the catalogue the
model learns from, as a newly listed item would not be). It is still scored at inference,
through the text projection. Optionally (``id_dropout``) the id embedding of random items
is dropped during training, so the model learns to place items by text alone.

No text. Items without text get a zero text vector, whose projection is exactly zero (no
bias), so they are represented by their id embedding alone. With no text at all the text
branch is skipped and the model *is* SessAttn: same parameters drawn from the same seed (the
text projection is created without touching the global random state), same training
steps, same scores (``tests/models/neural/test_sessattn_text.py`` checks it). Diginetica
and event files have no text: there this model degrades exactly to SessAttn.

Export. :meth:`SessAttnText.for_export` folds the text into the id table: a plain SessAttn
whose item embeddings are this model's item representations, so the ONNX graph holds one
``(n_items + 1, d)`` table and nothing 512-d, and ``models.serving`` runs it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from models.errors import InvalidInputError
from models.neural.base import init_weights
from models.neural.sessattn import SessAttn, SessAttnConfig


@dataclass(frozen=True)
class SessAttnTextConfig(SessAttnConfig):
    text_dim: int = 512  # width of the frozen item text vectors
    text_hidden: int = 0  # 0: linear text projection; > 0: two bias-free layers with a
    # GELU between, this wide
    id_dropout: float = 0.0  # training only: share of items with text whose id embedding
    # is zeroed in a step (the model then learns to score them by text alone)
    center_text: bool = True  # subtract the mean text vector (over items with text) and
    # re-normalise: the encoder's vectors share a large common part (on Amazon Scientific
    # the mean vector has norm 0.5, two items' average cosine is 0.25)
    whiten: int = 256  # > 0: after centring, whiten the text vectors on their top `whiten`
    # principal directions (equal variance each, the rest dropped), then re-normalise
    # (centring and whitening 256 were each chosen on Amazon Scientific validation)


def _whiten(x: torch.Tensor, rank: int) -> torch.Tensor:
    """Rows of centred ``x (n, k)`` whitened on the top ``rank`` principal directions,
    expressed back in the original ``k`` coordinates (rank ``rank``)."""
    x64 = x.double()
    _, s, vt = torch.linalg.svd(x64, full_matrices=False)  # vt (r, k), s (r,)
    rank = min(rank, int((s > s[0] * 1e-6).sum()))
    basis = vt[:rank]  # (rank, k)
    scale = len(x) ** 0.5 / s[:rank]  # 1 / standard deviation along each direction
    return ((x64 @ basis.T) * scale @ basis).float()  # (n, k)


def _sync_after_load(module: SessAttnText, incompatible_keys: Any) -> None:
    """``load_state_dict`` post-hook: the text buffer may have changed."""
    module._sync_has_text()


class SessAttnText(SessAttn):
    architecture = "sessattn_text"
    text: torch.Tensor  # buffer (n_items + 1, text_dim): frozen text vectors, 0 = no text
    id_mask: torch.Tensor  # buffer (n_items + 1,): 1 where the id embedding counts; 0 for
    # padding and for items with text never seen in training (cold)
    pool: torch.Tensor  # buffer (C,): items the training softmax ranks (not persistent)

    def __init__(self, config: SessAttnTextConfig) -> None:
        super().__init__(config)  # draws exactly SessAttn's parameters
        n_rows = config.n_items + 1
        self.register_buffer("text", torch.zeros(n_rows, config.text_dim))
        mask = torch.ones(n_rows)
        mask[0] = 0.0
        self.register_buffer("id_mask", mask)
        self.register_buffer("pool", torch.zeros(0, dtype=torch.long), persistent=False)
        with torch.random.fork_rng(devices=[]):  # leaves the global random state as it was
            out = nn.Linear(config.text_hidden or config.text_dim, config.dim, bias=False)
            self.text_proj: nn.Module = out
            if config.text_hidden:
                self.text_proj = nn.Sequential(
                    nn.Linear(config.text_dim, config.text_hidden, bias=False), nn.GELU(), out
                )
            init_weights(self.text_proj)
        nn.init.zeros_(out.weight)  # text starts contributing nothing, then learns to
        self._has_text = False
        self._step_table: torch.Tensor | None = None  # one table per training step
        self.register_load_state_dict_post_hook(_sync_after_load)

    # ------------------------------------------------------------------ text
    def attach_text(self, vectors: npt.NDArray[np.floating]) -> None:
        """Set the frozen text vectors ``(n_items + 1, text_dim)`` (row 0 and items without
        text: zero rows). Call before training: :meth:`prepare` reads which items have text."""
        table = torch.as_tensor(np.asarray(vectors, dtype=np.float32)).clone()
        if tuple(table.shape) != tuple(self.text.shape):
            raise InvalidInputError(
                f"{self.architecture}: text vectors of shape {tuple(table.shape)}, expected "
                f"{tuple(self.text.shape)} (n_items + 1, text_dim)"
            )
        table[0] = 0.0
        has = table.any(dim=1)  # (N + 1,) items with text
        if self.config.center_text and has.any():
            centred = table[has] - table[has].mean(dim=0)  # (n_text, text_dim)
            if self.config.whiten:
                centred = _whiten(centred, self.config.whiten)
            table[has] = F.normalize(centred, dim=-1)
        with torch.no_grad():
            self.text.copy_(table)
        self._sync_has_text()

    def _sync_has_text(self) -> None:
        self._has_text = bool(self.text.any())

    @property
    def has_text(self) -> bool:
        """Whether any item has text (otherwise the model is exactly SessAttn)."""
        return self._has_text

    @torch.no_grad()
    def prepare(self, sessions: Sequence[Sequence[int]]) -> None:
        """SessAttn's neighbour tables, plus which items are cold: with text but absent
        from every training session. Cold items lose their id embedding and leave the
        training softmax."""
        super().prepare(sessions)
        seen = torch.zeros(self.config.n_items + 1, dtype=torch.bool)
        flat = [item for session in sessions for item in session]
        if flat:
            seen[torch.as_tensor(flat, dtype=torch.long)] = True
        cold = ~seen & self.text.any(dim=1).cpu()  # (N + 1,)
        cold[0] = False
        mask = (~cold).float()
        mask[0] = 0.0
        self.id_mask.copy_(mask)
        pool = torch.nonzero(~cold[1:]).squeeze(1) + 1  # (C,) sorted
        self.pool = pool.to(self.id_mask.device) if cold.any() else pool[:0]

    # ------------------------------------------------------------------ representation
    def _item_table(self) -> torch.Tensor:
        """``(n_items + 1, d)`` item representations: masked id embedding + text part."""
        keep = self.id_mask  # (N + 1,)
        if self.training and self.config.id_dropout > 0.0:
            has_text = self.text.any(dim=1)
            dropped = torch.rand(keep.shape, device=keep.device) < self.config.id_dropout
            keep = keep * ~(dropped & has_text)
        ids = self.items.weight * keep.unsqueeze(1)  # (N + 1, d)
        return ids + self.text_proj(self.text)  # (N + 1, d)

    def item_matrix(self) -> torch.Tensor:
        if not self._has_text:
            return self.items.weight
        if self._step_table is not None:
            return self._step_table
        return self._item_table()

    def embed(self, item_ids: torch.Tensor) -> torch.Tensor:
        if not self._has_text:
            return self.items(item_ids)
        return F.embedding(item_ids, self.item_matrix())  # (..., d)

    def training_candidates(self) -> torch.Tensor | None:
        return self.pool if self._has_text and len(self.pool) else None

    def loss(self, item_ids: torch.Tensor, lengths: torch.Tensor, negatives: int = 0,
             bf16: bool = False) -> torch.Tensor:
        """SessAttn's loss, with the item table computed once for the step (one id-dropout
        draw shared by histories, neighbours and candidates)."""
        if not self._has_text:
            return super().loss(item_ids, lengths, negatives, bf16)
        self._step_table = self._item_table()
        try:
            return super().loss(item_ids, lengths, negatives, bf16)
        finally:
            self._step_table = None

    # ------------------------------------------------------------------ export
    @torch.no_grad()
    def for_export(self) -> SessAttn:
        """A SessAttn scoring exactly like this model: its item embeddings are this model's
        item representations (text folded in), everything else copied."""
        base_fields: dict[str, Any] = {
            f.name: getattr(self.config, f.name) for f in fields(SessAttnConfig)
        }
        with torch.random.fork_rng(devices=[]):
            plain = SessAttn(SessAttnConfig(**base_fields))
        state = {k: v for k, v in self.state_dict().items() if k in plain.state_dict()}
        was_training = self.training
        self.eval()
        state["items.weight"] = self.item_matrix().detach().clone()
        self.train(was_training)
        plain.load_state_dict(state)
        return plain.to(self.items.weight.device).eval()
