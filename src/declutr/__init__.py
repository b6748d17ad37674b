"""DeCLUTR: self-supervised contrastive learning of universal sentence embeddings."""

__version__ = "0.1.0"
__all__ = ["Encoder", "__version__"]


def __getattr__(name: str):
    # ``from declutr import Encoder`` without importing torch and transformers for every ``import declutr``.
    if name == "Encoder":
        from declutr.encoder import Encoder

        return Encoder
    raise AttributeError(f"module 'declutr' has no attribute {name!r}")
