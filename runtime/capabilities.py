"""What a model can do, decided once: read from its artefact's metadata (and the stage files beside
it) into one record that batch, serve, the benchmarks and the web page ask.

Guides work on every model whose stages lie beside it (`guides`): hints are spread over its
colours and a reference's palette blends into them (`runtime.guides`). The rest depends on the
model:

- `hint_planes`: the graph also takes hints as input planes (colour model v2), fed before the
  guides make them hold;
- `global_hint`: it takes a reference's histogram as input (v2 trained with the global hint); a
  model without one takes the reference's palette after its generator instead;
- `temperature_range` / `default_temperature`: a distribution model's annealed mean (None: a
  regression model has no temperature);
- `suggests`: it has a distribution to suggest colours from (its distribution stage beside it);
  otherwise suggestions come from a reference's palette, or there are none;
- `intervals`: calibrated per-pixel intervals (an uncertainty head, or a v2 model's calibrated
  distribution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retint.runtime.colour_controls import TEMPERATURE_RANGE, ColourBins

if TYPE_CHECKING:
    from retint.runtime.artefact import Artefact


@dataclass(frozen=True)
class Capabilities:
    """What one model can do (module doc)."""

    bins: ColourBins | None = None  # a distribution model's a*b* bins (and default temperature); None: regression
    guides: bool = False  # its stages lie beside it: hints and a reference work on it
    suggests: bool = False  # suggestions from its own distribution
    intervals: bool = False  # calibrated per-pixel intervals

    @staticmethod
    def read(bins: ColourBins | None, *, stages: bool, distribution_stage: bool,
             uncertainty_alpha: float | None) -> "Capabilities":
        """The one rule from what an artefact's metadata and folder say: its bins (None: regression),
        whether its stages and its distribution stage lie beside it, its intervals' alpha."""
        return Capabilities(bins=bins, guides=stages, suggests=bins is not None and distribution_stage,
                            intervals=uncertainty_alpha is not None)

    @property
    def distribution(self) -> bool:
        """Whether the model predicts a distribution over a*b* bins (colour model v2)."""
        return self.bins is not None

    @property
    def hint_planes(self) -> bool:
        """Whether the graph takes hints as input planes (before the guides make them hold)."""
        return self.bins is not None

    @property
    def global_hint(self) -> bool:
        """Whether the graph takes a reference's histogram as input (else: the palette, after it)."""
        return self.bins is not None and self.bins.global_hint

    @property
    def temperature_range(self) -> tuple[float, float] | None:
        """The temperatures it takes (None: it has no temperature)."""
        return TEMPERATURE_RANGE if self.bins is not None else None

    @property
    def default_temperature(self) -> float | None:
        """The temperature its calls use unless given one (None: it has none)."""
        return self.bins.default_temperature if self.bins is not None else None

    @property
    def kind(self) -> str:
        """"distribution" or "regression": what its head predicts."""
        return "distribution" if self.bins is not None else "regression"

    def as_dict(self) -> dict[str, Any]:
        """What GET /v1/spec and the benchmarks' JSON say of it."""
        return {"kind": self.kind, "guides": self.guides, "hint_planes": self.hint_planes,
                "global_hint": self.global_hint, "suggests": self.suggests, "intervals": self.intervals,
                "temperature": self.default_temperature,
                "temperature_range": list(self.temperature_range) if self.temperature_range else None}


def capabilities_of(artefact: "Artefact") -> Capabilities:
    """What the model of a resolved artefact can do, before any engine is opened (colorize-batch
    --ray checks its guides with it)."""
    stages = artefact.stages
    return Capabilities.read(artefact.metadata.bins() if artefact.metadata else None, stages=stages is not None,
                             distribution_stage=stages is not None and stages.distribution is not None,
                             uncertainty_alpha=artefact.uncertainty_alpha)
