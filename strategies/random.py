"""random: uniform without replacement from the unlabeled pool (the reference every
other strategy is compared with)."""

from __future__ import annotations

from albench.strategy import Selection, SelectionContext, Strategy, register_strategy


@register_strategy
class RandomStrategy(Strategy):
    name = "random"
    description = "Uniform sample without replacement from the unlabeled pool."

    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        picked = ctx.rng.choice(ctx.unlabeled, size=min(budget, len(ctx.unlabeled)),
                                replace=False)
        return Selection(picked)
