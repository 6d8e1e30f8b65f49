"""SASRec (Kang & McAuley 2018): a causal Transformer over the session.

Learned absolute positions, pre-LayerNorm blocks, item embeddings shared between input and
output, trained with full-softmax cross-entropy on every position (the variant that beats
the original sampled binary loss). The session vector is the last position's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.neural.base import MASKED_LOGIT, SessionModel, causal_mask, init_weights


@dataclass(frozen=True)
class SASRecConfig:
    n_items: int  # catalogue size: item indices 1..n_items, 0 is padding/OOV
    max_seq_len: int = 50  # longest history the model reads; older items are dropped
    dim: int = 128  # width of embeddings and hidden vectors
    n_heads: int = 2  # attention heads per block; must divide dim
    n_layers: int = 2  # transformer blocks
    dropout: float = 0.2  # dropout on embeddings, attention output and MLP output
    temperature: float = 0.0  # 0: dot-product scores; > 0: scaled cosine


class Block(nn.Module):
    """Pre-LayerNorm causal self-attention + MLP."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.ln1 = nn.LayerNorm(config.dim)
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.proj = nn.Linear(config.dim, config.dim)
        self.ln2 = nn.LayerNorm(config.dim)
        self.mlp = nn.Sequential(
            nn.Linear(config.dim, 4 * config.dim), nn.GELU(), nn.Linear(4 * config.dim, config.dim)
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, width, dim = x.shape
        heads, head_dim = self.n_heads, dim // self.n_heads
        q, k, v = self.qkv(self.ln1(x)).split(dim, dim=-1)  # 3 x (B, T, d)
        q = q.view(batch, width, heads, head_dim).transpose(1, 2)  # (B, H, T, dh)
        k = k.view(batch, width, heads, head_dim).transpose(1, 2)  # (B, H, T, dh)
        v = v.view(batch, width, heads, head_dim).transpose(1, 2)  # (B, H, T, dh)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim)  # (B, H, T, T)
        att = att.masked_fill(~mask.unsqueeze(1), MASKED_LOGIT).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(batch, width, dim)  # (B, T, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.ln2(x)))


class SASRec(SessionModel):
    architecture = "sasrec"

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__(config)
        if config.dim % config.n_heads:
            raise ValueError(f"dim {config.dim} is not a multiple of n_heads {config.n_heads}")
        self.items = nn.Embedding(config.n_items + 1, config.dim, padding_idx=0)
        # Training windows are max_seq_len + 1 items wide (the last is only a target, but its
        # hidden state is computed with the rest), so one position more than serving reads.
        self.positions = nn.Embedding(config.max_seq_len + 1, config.dim)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln = nn.LayerNorm(config.dim)
        self.drop = nn.Dropout(config.dropout)
        init_weights(self)

    def item_matrix(self) -> torch.Tensor:
        return self.items.weight

    def hidden_states(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        width = item_ids.shape[1]
        pos = torch.arange(width, device=item_ids.device)
        x = self.items(item_ids) * math.sqrt(self.config.dim) + self.positions(pos)  # (B, T, d)
        x = self.drop(x)
        mask = causal_mask(lengths, width)  # (B, T, T)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln(x)  # (B, T, d)
