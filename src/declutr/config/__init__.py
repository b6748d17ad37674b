"""Hydra and OmegaConf helpers: building objects from configs, and the resolvers conf/ uses."""
