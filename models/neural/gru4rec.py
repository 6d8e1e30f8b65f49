"""GRU4Rec (Hidasi et al. 2016; tuned as in Hidasi & Czapp 2023).

The settings that make GRU4Rec competitive, which third-party ports often miss: a
cross-entropy loss over many negatives (here: the full catalogue, so no sampling and no
logQ correction are needed), constrained embeddings (the input item embedding is also the
output item embedding), and dropout on both the embedding and the hidden state. Sessions
are trained on every prefix at once (the GRU is causal), which matches session-parallel
mini-batches without their cross-session state resets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.neural.base import SessionModel, init_weights


@dataclass(frozen=True)
class GRU4RecConfig:
    n_items: int  # catalogue size: item indices 1..n_items, 0 is padding/OOV
    max_seq_len: int = 50  # longest history the model reads; older items are dropped
    dim: int = 128  # item embedding size = GRU hidden size (constrained embedding)
    n_layers: int = 1  # stacked GRU layers
    dropout_embed: float = 0.25  # dropout on input item embeddings
    dropout_hidden: float = 0.25  # dropout on the GRU output before scoring
    temperature: float = 0.0  # 0: dot-product scores (as GRU4Rec); > 0: scaled cosine


class GRU4Rec(SessionModel):
    architecture = "gru4rec"

    def __init__(self, config: GRU4RecConfig) -> None:
        super().__init__(config)
        self.items = nn.Embedding(config.n_items + 1, config.dim, padding_idx=0)
        self.gru = nn.GRU(config.dim, config.dim, num_layers=config.n_layers, batch_first=True)
        self.drop_embed = nn.Dropout(config.dropout_embed)
        self.drop_hidden = nn.Dropout(config.dropout_hidden)
        init_weights(self, std=0.05)

    def item_matrix(self) -> torch.Tensor:
        return self.items.weight

    def hidden_states(self, item_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # right padding: the state at position t only depends on items 0..t
        x = self.drop_embed(self.items(item_ids))  # (B, T, d)
        h, _ = self.gru(x)  # (B, T, d)
        return self.drop_hidden(h)
