"""The sentence-transformers folder layout, written by hand so the package never imports the library.

The transformer sits at the folder root (so the same folder is a plain Hugging Face model), followed by a
mean-pooling module in ``1_Pooling/``. These are the module names and config keys every
sentence-transformers release since 2.0 reads (newer releases still load them).
"""

from __future__ import annotations

import torch
import transformers

import declutr


def st_layout(dim: int, window: int) -> dict[str, dict | list]:
    """File path (relative to the folder) -> JSON content, for ``dim``-wide embeddings of ``window`` tokens."""
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ],
        # The tokenizer already lowercases (or not) by itself; the window matches our Encoder's truncation.
        "sentence_bert_config.json": {"max_seq_length": window, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "__version__": {"declutr": declutr.__version__, "transformers": transformers.__version__,
                            "pytorch": torch.__version__},
            "model_type": "SentenceTransformer",
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,  # mean over non-padding tokens, special tokens included: as trained
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    }
