import pytest

import declutr.model.inference_precision as inference_precision
from tests.helpers.configs import compose_hydra


@pytest.mark.parametrize(("native", "precision"), [(True, "bf16-mixed"), (False, "32-true")])
def test_fast_cpu_precision_is_bf16_only_where_the_cpu_has_bf16_units(monkeypatch, native, precision):
    """Emulated bf16 is ~20x slower than fp32 on a CPU without bf16 units (docs/performance.md). The corpus base's
    recipe follows the CPU; its GPU-sized variant stays bf16 whatever the host CPU has."""
    monkeypatch.setattr(inference_precision, "native_bf16", lambda device: native and device.type == "cpu")
    assert compose_hydra("trainer.precision=${fast_cpu_precision:}").trainer.precision == precision
    assert compose_hydra("experiment=mlm_base_corpus").trainer.precision == precision
    assert compose_hydra("experiment=mlm_base_corpus_large", "trainer=gpu").trainer.precision == "bf16-mixed"
