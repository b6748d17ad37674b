"""The table of setting paths names only settings that conf/ has: a rename there fails here, not silently where the
path is read (``OmegaConf.select`` gives ``None`` for a path that is gone)."""

import pytest
from omegaconf import DictConfig

from declutr.config import settings
from tests.helpers.configs import config_holding

PATHS = {name: value for name, value in vars(settings).items() if name.isupper()}


def test_the_table_names_each_setting_once():
    assert len(set(PATHS.values())) == len(PATHS), "two names for one setting"


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
def test_every_path_in_the_table_is_in_the_composed_config(path):
    parent, _, name = path.rpartition(".")
    node = config_holding(path)
    for part in parent.split(".") if parent else ():
        assert isinstance(node, DictConfig) and part in node, f"{path}: conf/ has no {part} here"
        node = node[part]
    assert isinstance(node, DictConfig) and name in node, f"{path} is not in conf/: update declutr.config.settings"
