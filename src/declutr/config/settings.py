"""The dotted path of every setting that code outside ``conf/`` reads, records or names by its path: one spelling each.

A rename in ``conf/`` changes one line here, and ``tests/config/test_settings.py`` fails until it does (a path that
``OmegaConf.select`` no longer finds would otherwise give ``None`` without a word). The schema's own entries for the
other settings are checked the same way (``tests/config/test_schema.py``).
"""

from __future__ import annotations

SEED = "seed"
# data
BATCH_SIZE = "data.batch_size"  # documents per step and device
DATA_SEED = "data.seed"
NUM_WORKERS = "data.num_workers"
NUM_ANCHORS = "data.sampler.num_anchors"
NUM_POSITIVES = "data.sampler.num_positives"
MIN_SPAN_LEN = "data.sampler.min_span_len"
MAX_SPAN_LEN = "data.sampler.max_span_len"
STRATEGY = "data.sampler.strategy"
WINDOW_LEN = "data.sampler.window_len"
WINDOWS_PER_DOCUMENT = "data.sampler.windows_per_document"
# model
ENCODER = "model.encoder.name_or_path"
RANDOM_INIT = "model.encoder.random_init"
CONTRASTIVE_WEIGHT = "model.contrastive_weight"
MLM_WEIGHT = "model.mlm_weight"
LOSS = "model.loss._target_"  # the contrastive loss class (model/loss=<option>)
TEMPERATURE = "model.loss.temperature"
LR = "model.optimizer.lr"
CHUNK_SIZE = "model.chunk_size"
GRAD_CACHE_CHUNK_SIZE = "model.grad_cache.chunk_size"
# trainer
MAX_STEPS = "trainer.max_steps"
MAX_EPOCHS = "trainer.max_epochs"
DEVICES = "trainer.devices"
NUM_NODES = "trainer.num_nodes"
# logger, paths, evaluation, reports
WANDB_LOG_MODEL = "logger.wandb.log_model"
WANDB_OFFLINE = "logger.wandb.offline"
OUTPUT_DIR = "paths.output_dir"
MLM_BASE_DIR = "paths.mlm_base_dir"
EVAL_MAX_EXAMPLES = "eval.max_examples"
EVAL_MODEL = "eval.model"
EVAL_RANDOM_INIT = "eval.random_init"
EVAL_REPRESENTATION = "eval.representation"
EVAL_OUTPUT_DIR = "eval.output_dir"
PROTOCOL_KFOLD = "eval.protocol.kfold"
PROTOCOL_C_VALUES = "eval.protocol.c_values"
PROTOCOL_N_JOBS = "eval.protocol.n_jobs"
REPORT_AXIS = "report.axis"
REPORT_OUTPUT_DIR = "report.output_dir"
REPRODUCE_PARALLEL = "reproduce.parallel"

