"""A figure set's page: every figure of one scale drawn from a results folder, and
``index.md`` embedding them (:func:`draw_figures`), one function per part of the page.

Nothing here trains: the figures read result files (and, for figure 3, the dataset's
images and a run's saved model when there is one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from albench.errors import ConfigError
from albench.paper import figures, picks
from albench.paper.figures import PanelData
from albench.paper.spec import FigureSet, PanelPlan, Reference, plan, read_references
from albench.strategy import available as strategy_classes
from albench.report import load_runs, md_table, section_hook


def command_for(figset: FigureSet, scale: str) -> str:
    """The command that runs (or resumes) a scale's sweeps and draws its figures."""
    extra = " --data-root DIR --device cuda" if scale != "shapes" else ""
    return f"python -m albench paper {figset.name} --scale {scale}{extra}"


@dataclass
class Page:
    """What the parts of a page share: the figure set, its panels' runs, and the lines so far."""

    figset: FigureSet
    scale: str
    results: Path
    out: Path
    plans: list[PanelPlan]
    panels: list[PanelData]
    refs: list[Reference]
    colors: dict[str, Any]
    lines: list[str] = field(default_factory=list)

    def hint(self, p: PanelPlan) -> str:
        """The commands that make a panel's runs."""
        extra = " --data-root DIR --device cuda" if self.scale != "shapes" else ""
        return (f"`{command_for(self.figset, self.scale)}` (or the panel alone: `python -m albench "
                f"sweep --config {self.figset.rel(p.panel.sweep)} --out {self.results}{extra}`)")

    def figure(self, stem: str, caption: str) -> None:
        self.lines += [f"![{caption}]({stem}.png)", "", f"[PNG]({stem}.png) · [SVG]({stem}.svg)", ""]

    def diagnosed(self) -> list[str]:
        """The strategies figure 4 shows: the figure set's list, else every strategy of its
        panels whose class declares a report section."""
        if self.figset.diagnostics is not None:
            return list(self.figset.diagnostics)
        known = strategy_classes()
        names = {s for p in self.plans for s in p.strategies}
        return [n for n in known if n in names and getattr(known[n], "report_section", None)]


def draw_figures(figset: FigureSet, scale: str, results: str | Path, out: str | Path,
                 overrides: dict[str, Any] | None = None) -> Path:
    """Draw every figure of ``scale`` from ``results`` into ``out``; return the page's path.

    Raises :class:`ConfigError` naming the sweeps to run when no panel has any run.
    """
    page = open_page(figset, scale, Path(results), Path(out), overrides)
    for part in (header, missing_runs, fig_curves, fig_references, fig_picks, fig_diagnostics,
                 fig_cost):
        part(page)
    path = page.out / "index.md"
    path.write_text("\n".join(page.lines))
    return path


def open_page(figset: FigureSet, scale: str, results: Path, out: Path,
              overrides: dict[str, Any] | None) -> Page:
    """The panels' runs in ``results``; a :class:`ConfigError` naming the sweeps when none has any."""
    plans = plan(figset, scale, overrides)
    page = Page(figset, scale, results, out, plans, [], [], {})
    if not results.is_dir() or not any(results.rglob("manifest.json")):
        raise ConfigError(f"No runs in {results} for the {figset.name} figures at scale {scale}. "
                          f"Run {page.hint(plans[0])} first.")
    runset = load_runs(results)
    page.panels = [figures.panel_data(p, runset.runs, runset.root) for p in plans]
    if not any(p.curves for p in page.panels):
        hints = "; ".join(f"panel {p.panel.id}: {page.hint(p)}" for p in plans)
        raise ConfigError(f"{results} holds no run of the {figset.name} figure set at scale "
                          f"{scale} (its panels need other settings). Run {hints}.")
    out.mkdir(parents=True, exist_ok=True)
    page.refs = read_references(figset.references)
    page.colors = figures.strategy_colors(sorted({s for p in plans for s in p.strategies}))
    return page


def header(page: Page) -> None:
    fs = page.figset
    page.lines += [f"# {fs.title} — scale `{page.scale}`", "", f"Paper: {fs.paper}.", "",
                   fs.scales[page.scale].description, "",
                   f"Runs read from `{page.results}`; regenerate with "
                   f"`{command_for(fs, page.scale)}`.", ""]


def missing_runs(page: Page) -> None:
    """What is missing, each named with the sweep that makes it."""
    diagnosed = page.diagnosed()
    lines = []
    for data in page.panels:
        p = data.plan
        for name in p.missing:
            what = ("curve and its diagnostics (figure 4) are" if name in diagnosed
                    else "curve is")
            lines.append(f"- Panel {p.panel.id}: strategy `{name}` is not registered in this "
                         f"albench, so its {what} left out. Once it is, {page.hint(p)} runs its runs.")
        absent = [s for s in data.missing if s not in p.missing]
        if absent and data.curves:
            lines.append(f"- Panel {p.panel.id}: no finished runs of {', '.join(absent)}; run "
                         f"{page.hint(p)}.")
        elif not data.curves:
            lines.append(f"- Panel {p.panel.id} ({p.panel.title}) has no runs in `{page.results}` "
                         f"and is not drawn; run {page.hint(p)}.")
    if lines:
        page.lines += ["## Missing runs", "", *lines, ""]


def fig_curves(page: Page) -> None:
    page.lines += ["## Figure 1: AL curves", ""]
    figures.plot_curves(page.panels, page.out / "fig1_curves", page.colors)
    page.figure("fig1_curves", "AL curves per panel")
    page.lines += ["Lines: mean over seeds; bands: 95% intervals over seeds "
                   "(`albench.stats.mean_interval`: Student t-intervals below 30 seeds, "
                   "percentile bootstrap from 30). Bottom axis: labeled images; top axis: the "
                   "same as % of the pool. Colours, markers and line styles follow the full "
                   "registry order (`albench.style`), as in the report; upper bounds have "
                   "hollow markers and thinner lines.", ""]
    figures.plot_deltas(page.panels, page.out / "fig1_delta")
    page.figure("fig1_delta", "Paired difference to random per round")
    page.lines += ["Δ vs random per round: the mean of the per-seed differences (every strategy "
                   "at a seed shares the initial labeled set and the round-0 model) with its "
                   "95% paired interval (`albench.stats.paired_interval`).", ""]


def _unpublished(page: Page) -> str:
    """The figure's strategies with no published value at all, as a sentence ("" if none)."""
    names = sorted(set(page.colors) - {r.strategy for r in page.refs})
    if not names:
        return ""
    return (f"No published value of {', '.join(names)} exists in public text, so none is "
            "drawn or compared.")


def fig_references(page: Page) -> None:
    page.lines += ["## Figure 2: published values", ""]
    refs = page.refs
    missing = _unpublished(page)
    ref_panels = [p for p in page.panels if figures.like_with_like(p, refs)]
    if ref_panels:
        figures.plot_references(page.panels, refs, page.out / "fig2_references", page.colors)
        page.figure("fig2_references", "Published values and our curves")
        page.lines += [
            "Markers: published values of the panel's protocol and metric only, one marker "
            "shape per paper; filled when the value is exact (printed in a table, the text or "
            "on a figure), hollow when read off a plot. The papers' detectors (SSD, RetinaNet) "
            "are not ours: compare shapes of curves and orderings, not absolute levels. "
            + missing, "",
            "### Reproduction gap", "",
            md_table(["Panel", "Paper", "Strategy", "Labeled", "Metric", "Published", "Exact",
                      "Detector (paper / ours)", "Ours (mean)", "Ours 95% interval",
                      "Gap (ours − published)", "Source"],
                     figures.gap_rows(ref_panels, refs), "r"), "",
            "Values in percentage points; only rows of the panel's protocol and metric are "
            "compared; ours interpolated linearly between rounds when the labeled count falls "
            "between them (a share of the pool converted with the run's pool size). Where the "
            "detector column differs, the gap is a difference of recipe as much as of "
            "strategy. " + missing, ""]
        return
    protocols = [p.panel.protocol for p in page.panels if p.panel.protocol]
    fs = page.figset
    where = fs.rel(fs.references) if fs.references else "the references table"
    held = sorted({r.protocol for r in refs})
    if refs:
        page.lines += [f"`{where}` holds {len(refs)} published values ({sum(r.exact for r in refs)} "
                       f"exact, the rest read off plots) for the protocols {', '.join(held)}. "
                       + missing, ""]
        page.lines += [md_table(["Paper", "Detector", "Protocol", "Metric", "Strategy", "Values",
                                 "Labeled", "Published", "Exact"], published_rows(refs)), "",
                       "Published: the range of the values in points; Exact: how many of them "
                       "are exact (printed), the others read off a plot.", ""]
    page.lines += [("No published values of the same protocol and metric are recorded in " f"`{where}` for "
                    + (f"the protocols {', '.join(protocols)}" if protocols else
                       f"this scale's panels (they use `{page.scale}`, not a published protocol)")
                    + "; figure 2 is drawn for scales whose panels have them "
                    f"(`{command_for(fs, 'paper')}`)."
                    " See docs/paper.md for how the table is filled."), ""]


def published_rows(refs: list) -> list[list[str]]:
    """One row per (paper, detector, protocol, metric, strategy) of the references table."""
    groups: dict[tuple, list] = {}
    for r in refs:
        groups.setdefault((r.paper, r.detector, r.protocol, r.metric, r.strategy), []).append(r)
    rows = []
    for key, group in sorted(groups.items()):
        shown = [f"{r.labeled_pct:g}%" if r.labeled != r.labeled else f"{r.labeled:.0f}"
                 for r in group]
        values = [r.value for r in group]
        exact = sum(r.exact for r in group)
        rows.append([*key, str(len(group)), f"{shown[0]} … {shown[-1]}" if len(shown) > 1
                     else shown[0], f"{min(values):.2f} … {max(values):.2f}",
                     f"{exact} of {len(group)}"])
    return rows


def fig_picks(page: Page) -> None:
    page.lines += ["## Figure 3: what the strategies pick", ""]
    first = next(p for p in page.panels if p.curves)
    chosen, notes = picks.draw(first, page.figset.picks, page.out, page.colors)
    if chosen is not None:
        page.figure("fig3_picks_map", "t-SNE map of the pool with each strategy's batch")
        page.figure("fig3_picks_grid", "First picks per strategy")
        page.lines += [f"Panel {first.panel.id}, round {chosen.round}, seed {chosen.seed}. "
                       f"Embeddings: {chosen.embedding}.", ""]
        if chosen.model_run is None:
            page.lines += ["No run of this panel kept its model (`state/round-NNNN/model.pt`), so the map "
                           "uses the pixel proxy and the grid draws ground-truth boxes; a run that "
                           "keeps `state/` gives the detector's embeddings and boxes instead.", ""]
    page.lines += [f"- {n}" for n in notes] + ([""] if notes else [])


def fig_diagnostics(page: Page) -> None:
    """Figure 4: per panel, each diagnosed strategy's own figure and table, drawn by the
    report section its class declares (:mod:`albench.report.sections`)."""
    page.lines += ["## Figure 4: strategy diagnostics", ""]
    names = page.diagnosed()
    known = strategy_classes()
    drawn: set[str] = set()
    for data in page.panels:
        for name in names:
            hook = section_hook(known[name]) if name in known else None
            mine = [r for r in data.runs if str(r.config.get("strategy", r.strategy)) == name]
            if hook is None or not mine:
                continue
            section = hook(mine, data.root, page.out, stem=f"fig4_{data.panel.id}_{name}")
            if section:
                title = section[0].lstrip("#").strip()
                page.lines += [f"### {data.panel.title}: {title}", "", *section[2:]]
                drawn.add(name)
    if not names:
        page.lines += ["The figure set names no strategy whose diagnostics to draw "
                       "(`diagnostics:` in its figures.yaml).", ""]
    for name in (n for n in names if n not in drawn):
        state = ("is not registered in this albench" if name not in known
                 else "declares no report section" if section_hook(known[name]) is None
                 else f"has no finished runs in `{page.results}`")
        page.lines += [f"`{name}` {state}, so there are no diagnostics of it to draw. Run "
                       f"{page.hint(page.plans[0])} once it is available.", ""]


def fig_cost(page: Page) -> None:
    page.lines += ["## Figure 5: compute cost", ""]
    figures.plot_cost(page.panels, page.out / "fig5_cost")
    page.figure("fig5_cost", "Seconds per round by phase")
    page.lines += ["Wall-clock seconds per round by phase (rounds.csv: t_train_s, t_infer_s, "
                   "t_select_s, t_strategy_train_s, t_eval_s). At each seed the first run of a "
                   "sweep trains the round-0 model and the others load it (round0_cached = 1), so "
                   "round 0 is one bar of its own, the training and evaluation of the run that "
                   "trained it (median over seeds), charged to no strategy; each strategy's bar "
                   "is the median over seeds of its mean over rounds >= 1.", ""]
