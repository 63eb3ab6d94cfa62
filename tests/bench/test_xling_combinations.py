"""The combinations harness of ``bench/stories.py`` (``xling_combinations``), run without an
embedding model: with an oracle embedding (one unit vector per labelled story, orthogonal
across stories) the embedding methods must score 1.00/1.00 pairwise and filed with embedding
neighbours as candidates, so a fault in threshold picking, pair scoring or filing shows here
rather than as a poor figure blamed on the model. Filed with band-key candidates only, they
keep precision 1.00 but lose the copies no band key proposes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import stories  # noqa: E402


def _oracle() -> dict[str, np.ndarray]:
    rows = [
        json.loads(line)
        for half in ("dev", "holdout")
        for line in (stories.XLING / f"{half}.jsonl").read_text(encoding="utf-8").splitlines()
        if line
    ]
    labels = sorted({r["story"] for r in rows})
    eye = np.eye(len(labels), dtype=np.float32)
    return {r["id"]: eye[labels.index(r["story"])] for r in rows}


@pytest.mark.timeout(120)
def test_oracle_embedding_scores_perfectly(capsys: pytest.CaptureFixture[str]) -> None:
    stories.xling_combinations(_oracle())
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = line.split()
        if cells and cells[0] in stories.COMBINATIONS and re.fullmatch(r"[\d.]+", cells[1]):
            rows[(cells[0], cells[2])] = cells[3:]
    assert {name for name, _ in rows} == set(stories.COMBINATIONS)
    for method in ("e5", "e5+24h"):
        pair_dev, pair_hold, band_dev, band_hold, nn_dev, nn_hold = rows[(method, "P>=.9")]
        assert [pair_dev, pair_hold, nn_dev, nn_hold] == ["1.00/1.00"] * 4, method
        assert band_dev.startswith("1.00/") and band_hold.startswith("1.00/"), method
    # concept evidence alone does not see the vectors: its figures stay below the target
    assert rows[("concepts", "P>=.9")][3] != "1.00/1.00"
