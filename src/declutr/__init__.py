"""DeCLUTR: self-supervised contrastive learning of universal sentence embeddings."""

__version__ = "0.1.0"
