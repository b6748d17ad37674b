"""A model's input word embeddings as a stand-in body: mean pooling over it averages a text's word vectors.

The classic bag-of-embeddings baseline (the representation a transformer starts from, before any layer mixes
the tokens), run through the same tokenisation, pooling and evaluation as the model itself.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

# What Encoder mean-pools: the last hidden layer, or the input word embeddings (this module's body).
REPRESENTATIONS = ("last_layer", "word_embeddings")


class WordEmbeddingBody(nn.Module):
    """Returns ``model``'s input word embeddings ``(batch, seq, hidden)`` as ``last_hidden_state``; no position or
    token-type embeddings, no layer norm."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.word_embeddings = model.get_input_embeddings()
        self.config = model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_) -> BaseModelOutput:
        return BaseModelOutput(last_hidden_state=self.word_embeddings(input_ids))
