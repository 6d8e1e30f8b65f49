"""What every neural session model shares: the scoring head, the next-item training loss,
attention masks and weight initialisation.

Batch convention (also the ONNX input convention, see ``models.onnx_contract``, whose
``pad_batch`` builds such batches):
``item_ids`` is ``(B, L)`` int64, each row one history oldest first, **right**-padded with 0;
``lengths`` is ``(B,)`` int64, the number of real items per row, at least 1. A model's
training path (:meth:`SessionModel.hidden_states`) is causal: position ``t`` sees items
``0..t`` only, so one pass over a session trains on every prefix of it. The inference path
(:meth:`SessionModel.forward`, the one exported) scores only the last real position of
each row against the whole catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.protocol import Session

PAD_SCORE = -1.0e9
"""Score the exported graph gives column 0 (padding/OOV): below every real score."""

MASKED_LOGIT = -1.0e9
"""Attention logit of a key a query must not see (softmax weight 0, no NaN when a row
masks every key)."""


class _FullSoftmaxCE(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ items.T`` against ``targets`` over the whole
    catalogue, with the softmax gradient computed in the forward pass: about half the
    memory traffic of ``F.cross_entropy(hidden @ items.T, targets)``. With ``bf16`` the
    three large matrix products run in bfloat16 (fp32 accumulation, AMX on recent Xeons)
    and the ``(n, N)`` probabilities are kept in bfloat16 (softmax computed in fp32)."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, items: torch.Tensor, targets: torch.Tensor,
                bf16: bool) -> torch.Tensor:
        dtype = torch.bfloat16 if bf16 else hidden.dtype
        n = len(targets)
        h, w = hidden.detach().to(dtype), items.detach().to(dtype)
        if bf16:
            # oneDNN caches one kernel per matrix shape: round the row count up to a
            # multiple of 64 so a training run meets few shapes (else memory keeps growing)
            h = F.pad(h, (0, 0, 0, (-n) % 64))  # (n', d)
        probs = torch.softmax(h @ w.T, dim=1)  # (n', N)
        rows = torch.arange(n, device=targets.device)
        loss = -probs[rows, targets].float().clamp_min(1e-30).log().mean()
        probs[rows, targets] -= 1.0  # d loss_sum / d logits
        probs[n:] = 0.0  # padding rows carry no gradient
        ctx.save_for_backward(probs, h, w)
        ctx.n = n
        return loss

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_logits, h, w = ctx.saved_tensors
        scale = grad / ctx.n
        grad_hidden = (grad_logits @ w)[: ctx.n].float() * scale  # (n, d)
        grad_items = (grad_logits.T @ h).float() * scale  # (N, d)
        return grad_hidden, grad_items, None, None


class _Normalize(torch.autograd.Function):
    """``F.normalize(x, dim=-1)`` with a fused backward (fewer passes over big tables)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        norm = x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        y = x / norm
        ctx.save_for_backward(y, norm)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        y, norm = ctx.saved_tensors
        return (grad - y * (grad * y).sum(dim=-1, keepdim=True)) / norm


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Unit rows along the last axis; the fused version when training, ``F.normalize`` for
    inference and export (plain ONNX operators)."""
    if torch.is_grad_enabled() and x.requires_grad and not torch.jit.is_tracing():
        return _Normalize.apply(x)
    return F.normalize(x, dim=-1)


def full_softmax_ce(
    hidden: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, bf16: bool = False
) -> torch.Tensor:
    """Mean CE of scores ``hidden (n, d) @ items (N, d).T`` for target rows in ``0..N-1``."""
    return _FullSoftmaxCE.apply(hidden, items, targets, bf16)


def causal_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """``(B, T, T)`` bool, True where query position ``s`` may attend key ``t``."""
    pos = torch.arange(width, device=lengths.device)
    valid = pos.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    causal = pos.unsqueeze(1) >= pos.unsqueeze(0)  # (T, T)
    return causal.unsqueeze(0) & valid.unsqueeze(1)  # (B, T, T)


class SessionModel(nn.Module):
    """Base of every neural model: subclasses define ``hidden_states`` and may override
    ``session_vector`` with a cheaper last-position-only inference path."""

    architecture: str = "base"
    pad_scores: torch.Tensor  # buffer: PAD_SCORE at column 0, zeros elsewhere

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        pad = torch.zeros(config.n_items + 1)
        pad[0] = PAD_SCORE
        self.register_buffer("pad_scores", pad, persistent=False)

    # ------------------------------------------------------------------ training path
    def prepare(self, sessions: Sequence[Session]) -> None:
        """Compute data-dependent buffers (e.g. co-occurrence tables) from the training
        sessions before training; ``models.neural.training.train_model`` calls it. Default: none."""

    def hidden_states(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Causal session vectors at every position: ``(B, T, d)``."""
        raise NotImplementedError

    def item_matrix(self) -> torch.Tensor:
        """Candidate item vectors ``(n_items + 1, d)`` the session vector is scored against."""
        raise NotImplementedError

    def training_candidates(self) -> torch.Tensor | None:
        """Sorted item indices the training loss ranks each target among; None (default):
        the whole catalogue. Every training target must be one of them."""
        return None

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores ``(..., n_items + 1)`` of session vectors ``(..., d)``; column 0 masked."""
        items = self.item_matrix()
        if getattr(self.config, "temperature", 0.0) > 0.0:
            hidden = F.normalize(hidden, dim=-1)
            items = F.normalize(items, dim=-1)
            return self.config.temperature * (hidden @ items.T) + self.pad_scores
        return hidden @ items.T + self.pad_scores

    def loss(
        self,
        item_ids: torch.Tensor,
        lengths: torch.Tensor,
        negatives: int = 0,
        bf16: bool = False,
    ) -> torch.Tensor:
        """Mean cross-entropy of predicting item ``t + 1`` from items ``0..t``.

        ``negatives == 0``: full softmax over the catalogue. Otherwise a sampled softmax over
        the batch's targets plus ``negatives`` uniformly drawn items (shared by the batch),
        with the usual log-expected-count correction; used only when the catalogue is much
        larger than the sample. ``bf16``: see :func:`full_softmax_ce`.
        """
        hidden = self.hidden_states(item_ids, lengths)  # (B, T, d)
        width = item_ids.shape[1]
        pos = torch.arange(width - 1, device=item_ids.device)
        has_target = pos.unsqueeze(0) < (lengths - 1).unsqueeze(1)  # (B, T-1)
        source = hidden[:, :-1][has_target]  # (n, d)
        targets = item_ids[:, 1:][has_target]  # (n,)
        pool = self.training_candidates()  # (C,) sorted item indices, or None: all items
        n_pool = self.config.n_items if pool is None else len(pool)
        if negatives > 0 and 2 * negatives < n_pool:
            sample = torch.randint(1, n_pool + 1, (negatives,), device=targets.device)
            if pool is not None:
                sample = pool[sample - 1]
            candidates, inverse, counts = torch.unique(
                torch.cat([targets, sample]), return_inverse=True, return_counts=True
            )  # (C,)
            in_batch = counts - torch.bincount(inverse[len(targets):], minlength=len(candidates))
            expected = in_batch.float() + negatives / n_pool  # expected multiplicity
            items = self.item_matrix()[candidates]  # (C, d)
            target_index = inverse[: len(targets)]
            correction = expected.log()
        elif pool is None:
            items = self.item_matrix()[1:]  # (N, d): column 0 is never a target
            target_index = targets - 1
            correction = None
        else:
            items = self.item_matrix()[pool]  # (C, d)
            target_index = torch.searchsorted(pool, targets)  # targets are in the pool
            correction = None
        if getattr(self.config, "temperature", 0.0) > 0.0:
            source = self.config.temperature * l2_normalize(source)
            items = l2_normalize(items)
        if correction is None:
            return full_softmax_ce(source, items, target_index, bf16)
        logits = source @ items.T - correction  # (n, C)
        return F.cross_entropy(logits, target_index)

    # ----------------------------------------------------------------- inference path
    def session_vector(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Session vector ``(B, d)`` at each row's last real position."""
        hidden = self.hidden_states(item_ids, lengths)  # (B, T, d)
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])  # (B, 1, d)
        return hidden.gather(1, index).squeeze(1)  # (B, d)

    def forward(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The exported scorer: ``(B, n_items + 1)`` float32, column 0 below all others."""
        return self.logits(self.session_vector(item_ids, lengths))

    def for_export(self) -> SessionModel:
        """The model ``models.export`` traces: one whose inference path scores like this
        one. Default: itself; a model can return a cheaper equivalent (e.g. with
        data-derived tables folded into its weights)."""
        return self


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The one place weights are initialised: normal(0, std) matrices, zero biases,
    unit LayerNorms, zero padding row."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, std=std)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.Embedding):
            nn.init.normal_(sub.weight, std=std)
            if sub.padding_idx is not None:
                with torch.no_grad():
                    sub.weight[sub.padding_idx].zero_()
        elif isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.GRU):
            for name, param in sub.named_parameters():
                if "weight" in name:
                    nn.init.orthogonal_(param)
                else:
                    nn.init.zeros_(param)
