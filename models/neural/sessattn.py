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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.neural.base import SessionModel, causal_mask, init_weights

NEG = -1.0e9


@dataclass(frozen=True)
class SessAttnConfig:
    n_items: int  # catalogue size: item indices 1..n_items, 0 is padding/OOV
    max_seq_len: int = 50  # longest history the model reads; older items are dropped
    dim: int = 128  # width of item embeddings and every hidden vector
    n_heads: int = 4  # attention heads (readout and blocks); must divide dim
    n_layers: int = 0  # causal self-attention blocks before the readout (0 = none)
    query_levels: tuple[int, ...] = (1, 2, 3)  # readout queries: mean of the last l items,
    # plus one query for the mean of the whole prefix
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
        att = att.masked_fill(~mask.unsqueeze(1), NEG).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(batch, width, dim)  # (B, T, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.ln2(x)))


class SessAttn(SessionModel):
    architecture = "sessattn"

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
        init_weights(self)

    def item_matrix(self) -> torch.Tensor:
        return self.items.weight

    def _relative(self, query_pos: torch.Tensor, width: int) -> torch.Tensor:
        """``(..., Q, T)`` clamped "items ago" index of key ``t`` seen from query position."""
        keys = torch.arange(width, device=query_pos.device)
        ago = query_pos.unsqueeze(-1) - keys  # (..., Q, T)
        return ago.clamp(0, self.config.max_seq_len - 1)

    def _encode(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Contextualised item vectors ``(B, T, d)`` (causal)."""
        x = self.drop(self.items(item_ids))  # (B, T, d)
        if self.blocks:
            width = item_ids.shape[1]
            mask = causal_mask(lengths, width)  # (B, T, T)
            ago = self._relative(torch.arange(width, device=item_ids.device), width)  # (T, T)
            bias = self.block_bias[:, ago]  # (H, T, T)
            for block in self.blocks:
                x = block(x, mask, bias)
        return self.ln(x)

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
        att = att.masked_fill(~visible[:, :, None, None, :], NEG).softmax(dim=-1)
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
