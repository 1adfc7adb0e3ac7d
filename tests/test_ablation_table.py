"""scripts/ablation-table on the committed ablation runs: variants named by the options that
differ from mgral's defaults, runs paired by seed, selection counts from the diagnostics."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from albench import stats

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "mgral-valid-ablations" / "avx512"


def _table(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "ablation-table"), str(folder)],
                          capture_output=True, text=True, cwd=ROOT)


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and not cells[0].startswith(("variant", "---")):
            rows.setdefault(cells[0], cells)  # first table first
    return rows


def _runs(strategy: str, **opts) -> dict[int, Path]:
    found = {}
    for m in RUNS.glob("*/manifest.json"):
        c = json.loads(m.read_text())["config"]
        o = c.get("strategy_options") or {}
        if c["strategy"] == strategy and all(o.get(k) == v for k, v in opts.items()):
            found.setdefault(int(c["seed"]), m.parent)
    return found


@pytest.mark.skipif(not RUNS.is_dir(), reason="the committed ablation runs are absent")
def test_ablation_table_pairs_runs_by_seed_and_counts_what_the_diagnostics_record():
    res = _table(RUNS)
    assert res.returncode == 0, res.stderr
    rows = _rows(res.stdout)
    assert rows["mgral defaults"][1] == "100,101,102"

    def aubc(run: Path) -> float:
        r = list(csv.DictReader(open(run / "rounds.csv")))
        return stats.aubc([float(x["n_labeled"]) for x in r], [float(x["ap50"]) for x in r])

    ent, rnd = _runs("entropy"), _runs("random")
    per_seed = [f"{aubc(ent[s]) - aubc(rnd[s]):+.3f}" for s in sorted(ent)]
    assert rows["entropy"][4].split() == per_seed

    ind = _runs("mgral", indifferent="random")
    applied = sum(bool(json.loads(line).get("indifferent"))
                  for run in ind.values() for line in open(run / "diagnostics.jsonl"))
    second = [line for line in res.stdout.split("\n\n", 1)[1].splitlines()
              if line.startswith("| mgral indifferent=random ")]
    assert second and second[0].strip("|").split("|")[-1].strip() == str(applied)
    assert applied > 0


def test_ablation_table_without_a_random_run_says_what_to_run(tmp_path):
    res = _table(tmp_path)
    assert res.returncode != 0
    assert "no complete random run" in res.stderr
