"""ll4al: learning loss for active learning (Yoo & Kweon, 2019).

The detector is trained with a loss-prediction head (``requires={"loss_head"}``; see
:mod:`albench.backends.loss_head`); the ``budget`` unlabeled images with the highest
predicted loss are selected, ties to the lower id.
"""

from __future__ import annotations

from albench.strategy import Selection, SelectionContext, Strategy, register_strategy, top_k


@register_strategy
class LL4ALStrategy(Strategy):
    name = "ll4al"
    description = "Highest predicted detection loss (LL4AL loss-prediction head)."
    requires = frozenset({"loss_head"})

    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        return top_k(ctx.unlabeled, ctx.model.predicted_loss(ctx.unlabeled), budget)
