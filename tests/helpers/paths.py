"""The repository and the real shared data the tests read (read-only)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("DECLUTR_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
CORPUS = DATA_DIR / "corpus"
STSB_DIR = DATA_DIR / "eval" / "stsb" / "senteval_tok_lower"
# 65 State of the Union addresses, one document per .txt file, all long: a small real corpus.
STATE_UNION = CORPUS / "nltk_state_union" / "state_union"
