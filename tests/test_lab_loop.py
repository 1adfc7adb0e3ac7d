"""Strategies that train and strategies with state, through the real loop.

``TwoCopies`` is the small example of the lab in use: it fine-tunes two copies of the
round's model on two halves of a candidate set (used without labels), scores both on a
labeled subset and picks from the better copy's candidates. ``Drifting`` carries a torch
module and two generators across rounds, so its selections depend on its saved state.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from albench.lab import FinetuneJob
from albench.loop import ActiveLearningLoop
from albench.results import read_jsonl, read_rows
from albench.strategy import Selection, Strategy

from tests.helpers.runs import comparable, crash_then_resume


class TwoCopies(Strategy):
    name = "test-two-copies"

    def select(self, ctx, budget):
        lab = ctx.lab
        cand = ctx.rng.choice(ctx.unlabeled, size=min(len(ctx.unlabeled), 2 * budget), replace=False)
        halves = [cand[: len(cand) // 2], cand[len(cand) // 2:]]
        held = ctx.labeled[: max(2, len(ctx.labeled) // 4)]
        train = np.setdiff1d(ctx.labeled, held)
        models = lab.finetune_many([FinetuneJob(train, h, epochs=1, seed=ctx.round) for h in halves])
        scores = [lab.score(m, held).ap50 for m in models]
        best = int(np.argmax(scores))
        pool = np.concatenate([halves[best], halves[1 - best]])
        return Selection(pool[:budget], diagnostics={"scores": scores, "best": best,
                                                     "from_best": int(min(budget, len(halves[best])))})


class Drifting(Strategy):
    name = "test-drifting"

    def __init__(self, **options):
        super().__init__(**options)
        self.gen = torch.Generator().manual_seed(7)
        with torch.random.fork_rng():  # initial weights from a seed of its own, not global state
            torch.manual_seed(11)
            self.layer = torch.nn.Linear(4, 1)
        self.np_rng = np.random.default_rng(3)

    def select(self, ctx, budget):
        with torch.no_grad():
            self.layer.weight.add_(torch.randn(self.layer.weight.shape, generator=self.gen))
        noise = self.np_rng.standard_normal(len(ctx.unlabeled))
        x = torch.as_tensor(np.stack([ctx.unlabeled % 7, ctx.unlabeled % 5, ctx.unlabeled % 3,
                                      noise], 1), dtype=torch.float32)
        score = self.layer(x).squeeze(1).detach().numpy()
        order = np.argsort(-score, kind="stable")[:budget]
        return Selection(ctx.unlabeled[order], score[order], {"w0": float(self.layer.weight[0, 0])})

    def state_dict(self):
        return {"layer": self.layer.state_dict(), "gen": self.gen.get_state(),
                "np": self.np_rng.bit_generator.state}

    def load_state_dict(self, state):
        self.layer.load_state_dict(state["layer"])
        self.gen.set_state(state["gen"])
        self.np_rng.bit_generator.state = state["np"]


def test_a_stateful_strategy_resumes_to_the_uninterrupted_selections(tiny_cfg, tmp_path, monkeypatch,
                                                                    temp_strategy):
    temp_strategy(Drifting)
    cfg = tiny_cfg(strategy=Drifting.name, seed=4, rounds=3, backend_options={"epochs": 1})
    whole = ActiveLearningLoop(cfg, tmp_path / "whole").run()
    resumed = crash_then_resume(cfg, tmp_path / "crash", Drifting, 2, monkeypatch)  # state from disk
    assert comparable(resumed.rows) == comparable(whole.rows)
    for name in ("selections.jsonl", "diagnostics.jsonl"):
        assert read_jsonl(resumed.run_dir / name) == read_jsonl(whole.run_dir / name)
    assert [d["round"] for d in read_jsonl(whole.run_dir / "diagnostics.jsonl")] == [0, 1, 2]


@pytest.mark.parametrize("backend", ["yolo", "frcnn"])
def test_a_strategy_that_trains_copies_runs_in_the_loop(tiny_cfg, tmp_path, temp_strategy, backend):
    temp_strategy(TwoCopies)
    extra = {"frcnn": {"epochs": 1, "warm_epochs": 1, "batch": 4, "box_batch_size_per_image": 16,
                       "rpn_post_nms_top_n_train": 50}}.get(backend, {})
    cfg = tiny_cfg(strategy=TwoCopies.name, backend=backend, rounds=1, seed=3,
                   backend_options=extra, dataset_options={"test_size": 16})
    result = ActiveLearningLoop(cfg, tmp_path, lab_workers=1).run()
    rows = read_rows(result.run_dir / "rounds.csv")
    (diag,) = read_jsonl(result.run_dir / "diagnostics.jsonl")
    (sel,) = read_jsonl(result.run_dir / "selections.jsonl")
    assert diag["round"] == 0 and diag["strategy"] == TwoCopies.name and len(diag["scores"]) == 2
    assert float(rows[0]["t_strategy_train_s"]) > 0
    assert len(set(sel["ids"])) == 8
