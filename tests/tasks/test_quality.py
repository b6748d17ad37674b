"""The method works: the paper's recipe in miniature, small enough for every CI run. A tiny BERT is pretrained with
MLM only (which leaves its mean-pooled embeddings poor, as the paper's RoBERTa baseline), then its pretraining is
extended with the contrastive objective; STS-B dev must rise well above the base's.

CALIBRATION
"""

from pathlib import Path

from declutr.tasks import train
from tests.conftest import DATA_DIR, STATE_UNION

TINY = ["model.encoder.config_overrides.hidden_size=64", "model.encoder.config_overrides.num_hidden_layers=2",
        "model.encoder.config_overrides.num_attention_heads=2", "model.encoder.config_overrides.intermediate_size=256"]
COMMON = [f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}", "evaluate.splits=[dev]", "logger=none",
          "callbacks.stsb_dev.every_n_steps=100000", "callbacks.model_checkpoint.save_last=false", "log_documents=false", "data.num_workers=0"]
BASE_STEPS, DECLUTR_STEPS, LR = 100, 60, 1.0e-3
MARGIN = 5.0  # STS-B dev points (Spearman x 100) above the base


def recipe(make_config, folder: Path, seed: int) -> tuple[float, float]:
    """STS-B dev of the tiny MLM base and after DeCLUTR on it (contrastive + MLM, the paper's objective)."""
    base = folder / "base"
    train.run(make_config("experiment=mlm_base", *TINY, *COMMON, f"seed={seed}", f"trainer.max_steps={BASE_STEPS}",
                          "data.batch_size=8", f"paths.output_dir={base}", "evaluate.enabled=false"))
    result = train.run(make_config("experiment=scale/miniature", f"paths.mlm_base_dir={base}", *COMMON, f"seed={seed}",
                                   f"trainer.max_steps={DECLUTR_STEPS}", f"model.optimizer.lr={LR}",
                                   f"paths.output_dir={folder / 'declutr'}"))
    return result["before"]["stsb_dev"], result["after"]["stsb_dev"]


def test_contrastive_pretraining_lifts_stsb_dev_well_above_the_mlm_base(make_config, tmp_path):
    before, after = recipe(make_config, tmp_path, seed=0)
    assert after >= before + MARGIN, f"STS-B dev {before:.2f} -> {after:.2f}: DeCLUTR no longer lifts the MLM base"
