"""Entry points dispatched by ``run.py`` on ``task=<name>``."""
