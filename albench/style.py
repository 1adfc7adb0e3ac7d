"""One figure style for every plot albench draws: a look per strategy, fonts, byte-stable files.

- :class:`StrategyStyles` gives each strategy one colour, one marker and one line style,
  fixed by its position in a given order of *all* known strategy names (the registry's
  order), so a strategy keeps its look whether or not others are in the figure. The
  reference strategy (``random``) is drawn black and thicker. Colours are the Okabe-Ito
  palette (Okabe & Ito, 2008), chosen to stay apart under the common colour-vision
  deficiencies; markers and line styles tell lines apart without colour too.
- :func:`context` sets readable font sizes and the palette as the default colour cycle;
  draw a figure inside ``with context():`` (matplotlib reads the settings when an artist is
  made).
- :func:`save` writes PNG, PDF and SVG whose bytes depend only on the figure: no creation
  date, and SVG element ids from a fixed salt instead of random ones.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

__all__ = ["OKABE_ITO", "MARKERS", "LINESTYLES", "RC", "Look", "StrategyStyles", "context",
           "save", "FORMATS"]

OKABE_ITO = {  # name -> hex, in the published order
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
REFERENCE_COLOR = OKABE_ITO["black"]
# Strategy colours, black kept for the reference; yellow last (weakest on white).
STRATEGY_COLORS = tuple(OKABE_ITO[n] for n in ("orange", "sky blue", "bluish green", "blue",
                                                "vermillion", "reddish purple", "yellow"))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINESTYLES = ("-", "--", "-.", ":")
FORMATS = ("png", "pdf", "svg")
SVG_SALT = "albench"

RC: dict[str, Any] = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 12,
    "lines.linewidth": 1.6, "lines.markersize": 5, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=[REFERENCE_COLOR, *STRATEGY_COLORS]),
    "savefig.dpi": 150, "pdf.fonttype": 42, "svg.fonttype": "path", "svg.hashsalt": SVG_SALT,
}


@dataclass(frozen=True)
class Look:
    """How one strategy is drawn. ``kwargs()`` gives the keywords for ``Axes.plot``."""

    color: str
    marker: str
    linestyle: str
    linewidth: float
    zorder: float

    def kwargs(self, upper_bound: bool = False) -> dict[str, Any]:
        """Plot keywords; an upper bound (a strategy that uses labels the real setting would
        not have) keeps colour and marker but gets hollow markers and a thinner line."""
        out = {"color": self.color, "marker": self.marker, "linestyle": self.linestyle,
               "linewidth": self.linewidth, "zorder": self.zorder}
        if upper_bound:
            out.update(markerfacecolor="white", linewidth=self.linewidth * 0.75)
        return out


class StrategyStyles:
    """The look of every strategy, fixed by its index in ``order``.

    ``order`` lists every strategy name that may appear in any figure (the registry's
    order, e.g. ``list(strategies.available())``; for a figure of one strategy's variants,
    their labels in a fixed order). ``reference`` (if it is in ``order``) is drawn black,
    solid and thicker; the others take, by their index among the non-reference names, the
    next colour, marker and line style, so seven strategies get seven colours and the
    triple (colour, marker, line style) stays unique well beyond that.
    """

    def __init__(self, order: Sequence[str], reference: str | None = "random") -> None:
        names = [str(n) for n in order]
        if len(set(names)) != len(names):
            raise ValueError(f"strategy names must be unique, got {names}")
        self.order = tuple(names)
        self.reference = reference if reference in names else None
        self._looks: dict[str, Look] = {}
        others = [n for n in names if n != self.reference]
        if self.reference is not None:
            self._looks[self.reference] = Look(REFERENCE_COLOR, MARKERS[0], "-", 2.4, 3)
        for i, name in enumerate(others):
            self._looks[name] = Look(
                STRATEGY_COLORS[i % len(STRATEGY_COLORS)],
                MARKERS[(i + 1) % len(MARKERS)],
                LINESTYLES[(i + 2 * (i // len(STRATEGY_COLORS))) % len(LINESTYLES)],
                1.6, 2,
            )

    def __getitem__(self, name: str) -> Look:
        try:
            return self._looks[name]
        except KeyError:
            raise ValueError(
                f"No figure style for strategy {name!r}: it is not in the order the styles "
                f"were made from ({', '.join(self.order)}). Build StrategyStyles from the "
                "full list of strategy names (the registry's order), not from those in one "
                "figure."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._looks

    def color(self, name: str) -> str:
        return self[name].color


@contextmanager
def context(**overrides: Any) -> Iterator[None]:
    """Apply :data:`RC` (plus ``overrides``) while a figure is built and drawn."""
    with matplotlib.rc_context({**RC, **overrides}):
        yield


def _metadata(fmt: str) -> dict[str, Any]:
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None, "ModDate": None}
    return {}


def save(fig: Figure, path_stem: str | Path, formats: Sequence[str] = FORMATS,
         dpi: int | None = None) -> list[Path]:
    """Write ``fig`` as ``<path_stem>.<format>`` for every format; return the paths.

    The files are byte-stable: the same figure drawn with the same library versions gives
    the same bytes on every run (no dates in SVG or PDF metadata, SVG ids salted with a
    fixed string). The stem is used as given: ``reports/x/curves`` writes
    ``reports/x/curves.png`` and so on; its folder is created.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {list(formats)}")
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "path"}):
        for fmt in formats:
            path = stem.parent / f"{stem.name}.{fmt}"
            fig.savefig(path, format=fmt, metadata=_metadata(fmt), dpi=dpi or RC["savefig.dpi"],
                        bbox_inches="tight")
            paths.append(path)
    return paths
