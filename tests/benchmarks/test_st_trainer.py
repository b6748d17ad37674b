"""benchmarks/st_trainer.py at smoke size: both trainers run on the same pairs and the ratio is printed."""

import re
import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT, STATE_UNION


@pytest.mark.slow
def test_both_trainers_see_the_same_pairs_and_the_ratio_is_printed():
    command = [sys.executable, str(ROOT / "benchmarks" / "st_trainer.py"), "model=tiny", f"data.files=[{STATE_UNION}]",
               "data.batch_size=2", "--steps", "2", "--rounds", "1"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 pairs per step" in result.stdout
    per_step = dict(re.findall(r"(declutr \(Lightning\)|sentence-transformers) [\d,]+ tokens/s \(([\d,]+)/step\)",
                               result.stdout))
    ours, theirs = (int(per_step[name].replace(",", "")) for name in ("declutr (Lightning)", "sentence-transformers"))
    # The same pairs in the same steps: theirs are our spans decoded and tokenised again, so the counts agree closely.
    assert abs(ours - theirs) <= 0.02 * ours
    assert re.search(r"ratio ours / theirs \(tokens/s\): median \d+\.\d{3}", result.stdout)
