"""``python -m albench paper NAME``: run (or resume) a paper's sweeps, then draw its figures.

A figure set is data (``paper/<name>/figures.yaml``, one sweep file per panel,
``paper/references.csv``; see :mod:`albench.paper.spec`). :func:`draw_figures` draws every
figure from a results folder without training; :func:`cmd_paper` first runs what is
missing through :func:`albench.sweep.run_sweep` (finished runs are skipped, interrupted
ones resume). See docs/paper.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from albench.errors import ConfigError
from albench.paper.spec import (FigureSet, PanelPlan, available, dry_run, load_figure_set, plan,
                                read_references)

__all__ = ["load_figure_set", "available", "plan", "dry_run", "draw_figures", "command_for"]


def command_for(figset: FigureSet, scale: str) -> str:
    """The command that runs (or resumes) a scale's sweeps and draws its figures."""
    extra = " --data-root DIR --device cuda" if scale != "shapes" else ""
    return f"python -m albench paper {figset.name} --scale {scale}{extra}"


def _sweep_hint(figset: FigureSet, scale: str, p: PanelPlan, results: Path) -> str:
    extra = " --data-root DIR --device cuda" if scale != "shapes" else ""
    return (f"`{command_for(figset, scale)}` (or the panel alone: `python -m albench sweep "
            f"--config {figset.rel(p.panel.sweep)} --out {results}{extra}`)")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _figure(lines: list[str], stem: str, caption: str) -> None:
    lines += [f"![{caption}]({stem}.png)", "", f"[PNG]({stem}.png) · [SVG]({stem}.svg)", ""]


def draw_figures(figset: FigureSet, scale: str, results: str | Path, out: str | Path,
                 overrides: dict[str, Any] | None = None) -> Path:
    """Draw every figure of ``scale`` from ``results`` into ``out``; return the page's path.

    Raises :class:`ConfigError` naming the sweeps to run when no panel has any run.
    """
    from albench import mgral_report
    from albench.paper import figures, picks
    from albench.report import load_runs

    results, out = Path(results), Path(out)
    plans = plan(figset, scale, overrides)
    if not results.is_dir() or not any(results.rglob("manifest.json")):
        raise ConfigError(f"No runs in {results} for the {figset.name} figures at scale {scale}. "
                          f"Run {_sweep_hint(figset, scale, plans[0], results)} first.")
    runset = load_runs(results)
    panels = [figures.panel_data(p, runset.runs, runset.root) for p in plans]
    if not any(p.curves for p in panels):
        hints = "; ".join(f"panel {p.panel.id}: {_sweep_hint(figset, scale, p, results)}" for p in plans)
        raise ConfigError(f"{results} holds no run of the {figset.name} figure set at scale "
                          f"{scale} (its panels need other settings). Run {hints}.")
    out.mkdir(parents=True, exist_ok=True)
    refs = read_references(figset.references)
    names = sorted({s for p in plans for s in p.strategies})
    colors = figures.strategy_colors(names)
    sc = figset.scales[scale]
    lines = [f"# {figset.title} — scale `{scale}`", "",
             f"Paper: {figset.paper}.", "", sc.description, "",
             f"Runs read from `{results}`; regenerate with `{command_for(figset, scale)}`.", ""]

    # what is missing, named with the sweep that makes it
    missing_lines = []
    for data in panels:
        p = data.plan
        for name in p.missing:
            missing_lines.append(
                f"- Panel {p.panel.id}: strategy `{name}` is not registered in this albench, so its "
                f"curve{' and figure 4 are' if name == 'mgral' else ' is'} left out. Once it is, "
                f"{_sweep_hint(figset, scale, p, results)} runs its runs.")
        absent = [s for s in data.missing if s not in p.missing]
        if absent and data.curves:
            missing_lines.append(f"- Panel {p.panel.id}: no finished runs of {', '.join(absent)}; run "
                                 f"{_sweep_hint(figset, scale, p, results)}.")
        elif not data.curves:
            missing_lines.append(f"- Panel {p.panel.id} ({p.panel.title}) has no runs in `{results}` and "
                                 f"is not drawn; run {_sweep_hint(figset, scale, p, results)}.")
    if missing_lines:
        lines += ["## Missing runs", "", *missing_lines, ""]

    lines += ["## Figure 1: AL curves", ""]
    figures.plot_curves(panels, out / "fig1_curves", colors)
    _figure(lines, "fig1_curves", "AL curves per panel")
    lines += ["Lines: mean over seeds; bands: 95% stratified-bootstrap intervals over seeds "
              "(albench.stats). Bottom axis: labeled images; top axis: the same as % of the pool.", ""]

    lines += ["## Figure 2: published values", ""]
    ref_panels = [p for p in panels if any(r.protocol == p.panel.protocol for r in refs)]
    if ref_panels:
        figures.plot_references(panels, refs, out / "fig2_references", colors)
        _figure(lines, "fig2_references", "Published values and our curves")
        lines += ["Hollow markers: published values (percent in the paper, drawn as fractions), "
                  "one marker shape per paper; the legend names each source and whether the value "
                  "is printed (exact) or read off a plot. Detectors and recipes differ from ours: "
                  "compare shapes of curves and orderings, not absolute levels.", "",
                  "### Reproduction gap", "",
                  _md_table(["Panel", "Paper", "Strategy", "Labeled", "Published", "Ours (mean)",
                             "Ours 95% CI", "Gap (ours − published)", "Source"],
                            figures.gap_rows(ref_panels, refs)), "",
                  "Values in percentage points; ours interpolated linearly between rounds when the "
                  "labeled count falls between them.", ""]
    else:
        protocols = [p.panel.protocol for p in panels if p.panel.protocol]
        where = figset.rel(figset.references) if figset.references else "the references table"
        lines += [("No published values are recorded in " f"`{where}` for "
                   + (f"the protocols {', '.join(protocols)}" if protocols else
                      f"this scale's panels (they use `{scale}`, not a published protocol)")
                   + "; figure 2 is drawn for scales whose panels have them "
                   f"(`{command_for(figset, 'paper')}`)."
                   " See docs/paper.md for how the table is filled."), ""]

    lines += ["## Figure 3: what the strategies pick", ""]
    first = next(p for p in panels if p.curves)
    chosen, notes = picks.draw(first, figset.picks, out, colors)
    if chosen is not None:
        _figure(lines, "fig3_picks_map", "t-SNE map of the pool with each strategy's batch")
        _figure(lines, "fig3_picks_grid", "First picks per strategy")
        lines += [f"Panel {first.panel.id}, round {chosen.round}, seed {chosen.seed}. Embeddings: "
                  f"{chosen.embedding}.", ""]
        if chosen.model_run is None:
            lines += ["No run of this panel kept its model (`state/model.pt`), so the map uses the "
                      "pixel proxy and the grid draws ground-truth boxes; a run that keeps "
                      "`state/` gives the detector's embeddings and boxes instead.", ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])

    lines += ["## Figure 4: MGRAL's diagnostics", ""]
    drawn4 = False
    for data in panels:
        mruns = mgral_report.collect(data.runs, data.root)
        if not mruns:
            continue
        figs = mgral_report.draw_all(mruns, out, prefix=f"fig4_{data.panel.id}_")
        section = mgral_report.section_lines(mruns, figs)
        lines += [f"### {data.panel.title}", ""] + section[2:]
        drawn4 = True
    if not drawn4:
        p0 = plans[0]
        state = ("is not registered in this albench" if any("mgral" in p.missing for p in plans)
                 else f"has no finished runs in `{results}`")
        lines += [f"MGRAL {state}, so there are no diagnostics to draw. Run "
                  f"{_sweep_hint(figset, scale, p0, results)} once it is available.", ""]

    lines += ["## Figure 5: compute cost", ""]
    figures.plot_cost(panels, out / "fig5_cost")
    _figure(lines, "fig5_cost", "Seconds per round by phase")
    lines += ["Mean seconds per round over all rounds and seeds, by phase (rounds.csv: "
              "t_train_s, t_infer_s, t_select_s, t_strategy_train_s, t_eval_s). At each seed the "
              "first run of a sweep trains the shared round-0 model and the others load it "
              "(rounds.csv round0_cached), so that run's round-0 training counts toward its "
              "strategy only.", ""]
    page = out / "index.md"
    page.write_text("\n".join(lines))
    return page
