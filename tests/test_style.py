"""The figure style: one look per strategy across figures, a palette that survives
deuteranopia, and files whose bytes depend only on the figure."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from albench import style

# Machado, Oliveira & Fernandes (2009), deuteranopia at severity 1.0, on linear RGB.
DEUTERANOPIA = np.array([[0.367322, 0.860646, -0.227968],
                         [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 0.968881]])
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                        [0.0193, 0.1192, 0.9505]])
D65 = np.array([0.95047, 1.0, 1.08883])


def _lab(hex_color: str, simulate: bool) -> np.ndarray:
    """CIELAB of an sRGB colour, optionally as a deuteranope sees it."""
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    if simulate:
        lin = np.clip(DEUTERANOPIA @ lin, 0, 1)
    t = SRGB_TO_XYZ @ lin / D65
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_distance(colors: list[str], simulate: bool = True) -> float:
    """Smallest CIE76 colour difference between two of ``colors``."""
    return min(float(np.linalg.norm(_lab(a, simulate) - _lab(b, simulate)))
               for a, b in itertools.combinations(colors, 2))


def test_palette_stays_distinguishable_under_deuteranopia() -> None:
    palette = list(style.OKABE_ITO.values())
    # The Okabe-Ito colours keep at least 17 CIELAB units apart for a deuteranope (the
    # closest: orange and yellow); 10 is a clearly visible difference for thin lines.
    assert _min_distance(palette) >= 15.0
    # The measure can fail: matplotlib's default cycle puts green next to red and blue next
    # to purple, which a deuteranope sees 7-8 units apart.
    tab10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    assert _min_distance(tab10) < 10.0
    assert _min_distance(tab10, simulate=False) > 15.0


def _draw(styles: style.StrategyStyles, names: list[str]) -> Figure:
    with style.context():
        fig = Figure(figsize=(5, 3.5))
        ax = fig.add_subplot()
        x = np.array([50, 75, 100])
        for i, name in enumerate(names):
            y = 0.1 + 0.05 * i + 0.1 * np.log(x / 50)
            ax.plot(x, y, label=name, **styles[name].kwargs(upper_bound=name == "mgral"))
            ax.fill_between(x, y - 0.02, y + 0.02, color=styles.color(name), alpha=0.2)
        ax.set_xlabel("labeled images")
        ax.set_ylabel("AP50")
        ax.set_title("shapes · yolo")
        ax.legend()
    return fig


def _line_looks(fig: Figure) -> dict[str, tuple]:
    return {line.get_label(): (line.get_color(), line.get_marker(), line.get_linestyle())
            for line in fig.axes[0].get_lines()}


def test_a_strategy_keeps_its_look_across_figures_with_other_strategies() -> None:
    import strategies

    order = list(strategies.available())  # the registry's order
    styles = style.StrategyStyles(order)
    first = _line_looks(_draw(styles, ["random", "entropy", "mgral"]))
    second = _line_looks(_draw(styles, ["mgral", "coreset", "entropy"]))
    assert first["entropy"] == second["entropy"] and first["mgral"] == second["mgral"]
    assert first["random"][0] == style.OKABE_ITO["black"]
    looks = [styles[n] for n in order]
    assert len({lk.color for lk in looks}) == len(order)  # one colour each
    assert len({lk.marker for lk in looks}) == len(order)  # one marker each
    assert len({lk.linestyle for lk in looks}) > 1
    with pytest.raises(ValueError, match="not in the order"):
        styles["unregistered"]


def test_looks_stay_unique_beyond_the_palette() -> None:
    names = [f"variant {i}" for i in range(40)] + ["random"]
    styles = style.StrategyStyles(names)
    triples = {(styles[n].color, styles[n].marker, styles[n].linestyle) for n in names}
    assert len(triples) == len(names)
    assert {styles[n].color for n in names[:7]} == set(style.STRATEGY_COLORS)
    with pytest.raises(ValueError):
        style.StrategyStyles(["a", "a"])


def test_save_writes_byte_stable_svg_pdf_and_png(tmp_path: Path) -> None:
    styles = style.StrategyStyles(["coreset", "entropy", "mgral", "random"])
    names = ["random", "entropy", "mgral"]
    first = style.save(_draw(styles, names), tmp_path / "a" / "curves")
    second = style.save(_draw(styles, names), tmp_path / "b" / "curves")
    assert [p.name for p in first] == ["curves.png", "curves.pdf", "curves.svg"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    svg, pdf = first[2].read_bytes(), first[1].read_bytes()
    assert b"<dc:date>" not in svg and b"CreationDate" not in pdf
    assert pdf.startswith(b"%PDF") and svg.lstrip().startswith(b"<?xml")
    only = style.save(_draw(styles, names), tmp_path / "c" / "v1.2", formats=("svg",))
    assert [p.name for p in only] == ["v1.2.svg"]
    with pytest.raises(ValueError):
        style.save(_draw(styles, names), tmp_path / "d", formats=("jpg",))
