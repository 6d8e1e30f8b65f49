"""SessAttn: streamrec's default session model.

Items -> (optional) causal self-attention blocks -> a multi-query attention readout
(queries: the last item, the mean of the last few items, the mean of the whole prefix, as
in STAMP/NARM/Atten-Mixer) with a learned relative ("items ago") position bias -> a
projection mixed with the last item -> cosine similarity with the (shared) item
embeddings times a temperature (NISER-style normalisation). Trained with full-softmax
cross-entropy on every prefix of every session at once (the model is causal).

The inference path (``session_vector``) computes the readout for each row's last position
only, so scoring one user costs one attention over at most ``max_seq_len`` items plus one
``(d x n_items)`` matrix-vector product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.neural.base import MASKED_LOGIT, SessionModel, causal_mask, init_weights
from models.neural.training import training_windows


@dataclass(frozen=True)
class SessAttnConfig:
    n_items: int  # catalogue size: item indices 1..n_items, 0 is padding/OOV
    max_seq_len: int = 50  # longest history the model reads; older items are dropped
    dim: int = 96  # width of item embeddings and every hidden vector (scoring reads an
    # n_items x dim table per call: 96 keeps batch-1 scoring of 43k items under 1 ms)
    n_heads: int = 4  # attention heads (readout and blocks); must divide dim
    n_layers: int = 0  # causal self-attention blocks before the readout (0 = none)
    query_levels: tuple[int, ...] = (1, 2, 3)  # readout queries: mean of the last l items,
    # plus one query for the mean of the whole prefix
    neighbors: int = 12  # global co-occurrence neighbours mixed into each history item
    # (GCE-GNN-like global context; 0 = off), taken from the training sessions
    neighbor_window: int = 2  # items at most this many positions apart co-occur
    dropout: float = 0.2  # dropout on item embeddings and on the session vector
    temperature: float = 14.0  # cosine-score scale; > 0 means normalised scoring


class CausalBlock(nn.Module):
    """Pre-LayerNorm transformer block over the prefix (masked multi-head attention + MLP)."""

    def __init__(self, config: SessAttnConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.ln1 = nn.LayerNorm(config.dim)
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.proj = nn.Linear(config.dim, config.dim)
        self.ln2 = nn.LayerNorm(config.dim)
        self.mlp = nn.Sequential(
            nn.Linear(config.dim, 2 * config.dim), nn.GELU(), nn.Linear(2 * config.dim, config.dim)
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, width, dim = x.shape
        heads, head_dim = self.n_heads, dim // self.n_heads
        q, k, v = self.qkv(self.ln1(x)).split(dim, dim=-1)  # 3 x (B, T, d)
        q = q.view(batch, width, heads, head_dim).transpose(1, 2)  # (B, H, T, dh)
        k = k.view(batch, width, heads, head_dim).transpose(1, 2)  # (B, H, T, dh)
        v = v.view(batch, width, heads, head_dim).transpose(1, 2)  # (B, H, T, dh)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim) + bias  # (B, H, T, T)
        att = att.masked_fill(~mask.unsqueeze(1), MASKED_LOGIT).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(batch, width, dim)  # (B, T, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.ln2(x)))


class SessAttn(SessionModel):
    architecture = "sessattn"
    # Buffers (only when config.neighbors > 0): each item's global neighbours and their
    # log co-occurrence counts, for inference and per training fold.
    nbr_ids: torch.Tensor
    nbr_logw: torch.Tensor
    fold_ids: torch.Tensor
    fold_logw: torch.Tensor

    def __init__(self, config: SessAttnConfig) -> None:
        super().__init__(config)
        if config.dim % config.n_heads:
            raise ValueError(f"dim {config.dim} is not a multiple of n_heads {config.n_heads}")
        n_queries = len(config.query_levels) + 1
        self.items = nn.Embedding(config.n_items + 1, config.dim, padding_idx=0)
        self.blocks = nn.ModuleList(CausalBlock(config) for _ in range(config.n_layers))
        self.block_bias = nn.Parameter(torch.zeros(config.n_heads, config.max_seq_len))
        self.ln = nn.LayerNorm(config.dim)
        self.query = nn.Linear(config.dim, config.dim)
        self.key = nn.Linear(config.dim, config.dim)
        self.value = nn.Linear(config.dim, config.dim)
        self.read_bias = nn.Parameter(torch.zeros(n_queries, config.n_heads, config.max_seq_len))
        self.out = nn.Linear((n_queries + 1) * config.dim, config.dim)
        self.drop = nn.Dropout(config.dropout)
        if config.neighbors:
            k = config.neighbors
            self.register_buffer("nbr_ids", torch.zeros(config.n_items + 1, k, dtype=torch.long))
            self.register_buffer("nbr_logw", torch.zeros(config.n_items + 1, k))
            # training only (cross-fitted tables, see prepare); not saved, not exported
            fold_shape = (2, config.n_items + 1, k)
            self.register_buffer("fold_ids", torch.zeros(fold_shape, dtype=torch.long),
                                 persistent=False)
            self.register_buffer("fold_logw", torch.zeros(fold_shape), persistent=False)
            self.nbr_query = nn.Linear(config.dim, config.dim)
            self.nbr_mix = nn.Linear(config.dim, config.dim)
            self.nbr_scale = nn.Parameter(torch.ones(()))
        init_weights(self)

    @torch.no_grad()
    def prepare(self, sessions: Sequence[Sequence[int]]) -> None:
        """Fill the neighbour tables from the training sessions: for each item, the
        ``neighbors`` items that most often occur within ``neighbor_window`` positions of it.

        Cross-fitted: training windows are split in two folds by the parity of their item-id
        sum, and a training row reads the table built from the *other* fold, so a session
        never sees its own co-occurrences (which would teach the model to trust neighbour
        lists more than they deserve on unseen sessions). Inference reads the table built
        from all sessions.
        """
        if not self.config.neighbors:
            return
        windows = training_windows(sessions, self.config.max_seq_len)
        folds = np.array([int(w.sum()) % 2 for w in windows], dtype=np.int64)
        ids, logw = self._table(windows)
        self.nbr_ids.copy_(ids)
        self.nbr_logw.copy_(logw)
        for fold in (0, 1):
            other = [w for w, f in zip(windows, folds, strict=True) if f != fold]
            ids, logw = self._table(other)
            self.fold_ids[fold].copy_(ids)
            self.fold_logw[fold].copy_(logw)

    def _table(self, windows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, log counts)``, each ``(n_items + 1, neighbors)``, of co-occurrences."""
        heads, tails = [], []
        for items in windows:
            for off in range(1, self.config.neighbor_window + 1):
                heads += [items[:-off], items[off:]]
                tails += [items[off:], items[:-off]]
        ids = torch.zeros_like(self.nbr_ids)
        logw = torch.zeros_like(self.nbr_logw)
        if not heads:
            return ids, logw
        a, b = np.concatenate(heads), np.concatenate(tails)
        keep = (a != b) & (a > 0) & (b > 0)
        width = self.config.n_items + 1
        keys, counts = np.unique(a[keep] * width + b[keep], return_counts=True)
        a, b = keys // width, keys % width
        order = np.lexsort((-counts, a))  # by item, most frequent neighbour first
        a, b, counts = a[order], b[order], counts[order]
        rank = np.arange(len(a)) - np.searchsorted(a, a, side="left")
        top = rank < self.config.neighbors
        ids[a[top], rank[top]] = torch.from_numpy(b[top])
        logw[a[top], rank[top]] = torch.from_numpy(np.log(counts[top]).astype(np.float32))
        return ids, logw

    def item_matrix(self) -> torch.Tensor:
        return self.items.weight

    def embed(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Item vectors ``(..., d)`` of indices ``(...)``: rows of :meth:`item_matrix`, the
        one item representation used for histories, neighbours and scoring alike."""
        return self.items(item_ids)

    def _relative(self, query_pos: torch.Tensor, width: int) -> torch.Tensor:
        """``(..., Q, T)`` clamped "items ago" index of key ``t`` seen from query position."""
        keys = torch.arange(width, device=query_pos.device)
        ago = query_pos.unsqueeze(-1) - keys  # (..., Q, T)
        return ago.clamp(0, self.config.max_seq_len - 1)

    def _encode(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Contextualised item vectors ``(B, T, d)`` (causal)."""
        x = self.embed(item_ids)  # (B, T, d)
        if self.config.neighbors:
            x = x + self._global_context(item_ids, x)
        x = self.drop(x)
        if self.blocks:
            width = item_ids.shape[1]
            mask = causal_mask(lengths, width)  # (B, T, T)
            ago = self._relative(torch.arange(width, device=item_ids.device), width)  # (T, T)
            bias = self.block_bias[:, ago]  # (H, T, T)
            for block in self.blocks:
                x = block(x, mask, bias)
        return self.ln(x)

    def _global_context(self, item_ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Attention over each item's global neighbours: ``(B, T, d)``."""
        if self.training:  # each row reads the table of the other fold
            fold = (item_ids.sum(dim=1, keepdim=True) % 2).expand_as(item_ids)  # (B, T)
            nbr, logw = self.fold_ids[fold, item_ids], self.fold_logw[fold, item_ids]
        else:
            nbr, logw = self.nbr_ids[item_ids], self.nbr_logw[item_ids]  # (B, T, K)
        nbr_x = self.embed(nbr)  # (B, T, K, d)
        query = self.nbr_query(x).unsqueeze(-2)  # (B, T, 1, d)
        att = (query * nbr_x).sum(-1) / math.sqrt(x.shape[-1])  # (B, T, K)
        att = att + self.nbr_scale * logw
        att = att.masked_fill(nbr == 0, MASKED_LOGIT).softmax(dim=-1)  # no neighbour: all weights
        # equal over padding rows, whose embedding is zero
        ctx = (att.unsqueeze(-1) * nbr_x).sum(-2)  # (B, T, d)
        return self.nbr_mix(ctx)

    def _readout(
        self, h: torch.Tensor, lengths: torch.Tensor, query_pos: torch.Tensor
    ) -> torch.Tensor:
        """Session vectors ``(B, Q, d)`` for query positions ``(B, Q)`` over items ``h``."""
        batch, width, dim = h.shape
        heads, head_dim = self.config.n_heads, dim // self.config.n_heads
        n_pos = query_pos.shape[1]
        # level queries: mean of the last l items up to each query position, and the mean of all
        csum = F.pad(h.cumsum(dim=1), (0, 0, 1, 0))  # (B, T + 1, d)
        end = query_pos + 1  # (B, Q)
        end_sum = csum.gather(1, end.unsqueeze(-1).expand(-1, -1, dim))  # (B, Q, d)
        levels = []
        for level in self.config.query_levels:
            start = (end - level).clamp(min=0)  # (B, Q)
            start_sum = csum.gather(1, start.unsqueeze(-1).expand(-1, -1, dim))  # (B, Q, d)
            levels.append((end_sum - start_sum) / (end - start).unsqueeze(-1).to(h.dtype))
        levels.append(end_sum / end.unsqueeze(-1).to(h.dtype))
        queries = torch.stack(levels, dim=2)  # (B, Q, L, d)
        n_levels = queries.shape[2]
        q = self.query(queries).view(batch, n_pos, n_levels, heads, head_dim)  # (B, Q, L, H, dh)
        k = self.key(h).view(batch, width, heads, head_dim)  # (B, T, H, dh)
        v = self.value(h).view(batch, width, heads, head_dim)  # (B, T, H, dh)
        att = torch.einsum("bqlhd,bthd->bqlht", q, k) / math.sqrt(head_dim)  # (B, Q, L, H, T)
        ago = self._relative(query_pos, width)  # (B, Q, T)
        att = att + self.read_bias[:, :, ago].permute(2, 3, 0, 1, 4)  # (B, Q, L, H, T)
        keys = torch.arange(width, device=h.device)
        visible = (keys <= query_pos.unsqueeze(-1)) & (keys < lengths.view(-1, 1, 1))  # (B, Q, T)
        att = att.masked_fill(~visible[:, :, None, None, :], MASKED_LOGIT).softmax(dim=-1)
        ctx = torch.einsum("bqlht,bthd->bqlhd", att, v)  # (B, Q, L, H, dh)
        ctx = ctx.reshape(batch, n_pos, n_levels * dim)  # (B, Q, L * d)
        last = h.gather(1, query_pos.unsqueeze(-1).expand(-1, -1, dim))  # (B, Q, d)
        return self.drop(self.out(torch.cat([ctx, last], dim=-1)))  # (B, Q, d)

    def hidden_states(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self._encode(item_ids, lengths)  # (B, T, d)
        positions = torch.arange(item_ids.shape[1], device=item_ids.device)
        query_pos = positions.unsqueeze(0).expand(item_ids.shape[0], -1)  # (B, T)
        return self._readout(h, lengths, query_pos)  # (B, T, d)

    def session_vector(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self._encode(item_ids, lengths)  # (B, T, d)
        return self._readout(h, lengths, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B, d)
