"""The flow's ``fileFormat``: which formats each render provider can produce, and how the
step's choice reaches the provider.

A ``generate-production-files`` step may name the format it wants (the seed's example says
``stl``). A format the storefront's provider can produce is honoured; one it cannot is
refused with a message naming the step, the provider and the format:

- CHILI GraFx produces ``pdf``, ``png``, ``jpg``, ``gif`` and ``mp4`` (one ``output/{format}``
  endpoint each). The step's format replaces the storefront's ``provider.format``; the
  storefront's ``outputSettingsId`` must suit it (CHILI answers 400 otherwise, which fails
  the step with CHILI's own message).
- Customer's Canvas's files are what the storefront's processing pipeline outputs, which
  PrintFlow cannot change. When the storefront declares them (``provider.outputFormats``)
  the step's format must be one of them; otherwise the formats are not knowable and the
  step's format is accepted as the pipeline's business.

The check runs when a storefront is registered against a flow, when a flow is checked
against the storefronts that run it, and at render start as a last line (nothing is started
for a refused format). One entry per provider in :data:`FORMAT_SUPPORT`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from printflow.domain.storefront import ProviderName, ProviderSettings
from printflow.errors import ValidationError
from printflow.providers.chili import CHILI_FORMATS, ChiliSettings
from printflow.providers.customers_canvas import CustomersCanvasSettings
from printflow.providers.registry import ProviderConfig

# Spellings of one format that providers treat as the same output.
FORMAT_ALIASES: Mapping[str, str] = {"jpeg": "jpg", "tif": "tiff"}


class UnsupportedFileFormat(ValidationError):
    """The step asks for a format its storefront's provider cannot produce."""


@dataclass(frozen=True, slots=True)
class FormatSupport:
    """What one provider can produce and how a step's format is applied to its settings.

    ``produces`` answers ``None`` when the formats are not knowable from the settings.
    """

    produces: Callable[[ProviderConfig], tuple[str, ...] | None]
    apply: Callable[[ProviderSettings, str], ProviderSettings]
    # How the list of formats is described in a refusal.
    described_as: str


def normalise_format(file_format: str) -> str:
    """Lower case, aliases folded (``JPEG`` -> ``jpg``)."""
    lowered = file_format.strip().lower().lstrip(".")
    return FORMAT_ALIASES.get(lowered, lowered)


def _chili_produces(config: ProviderConfig) -> tuple[str, ...] | None:
    assert isinstance(config, ChiliSettings)
    return CHILI_FORMATS


def _chili_apply(provider: ProviderSettings, file_format: str) -> ProviderSettings:
    # CHILI renders the format its endpoint names: the step's choice replaces the storefront's.
    return ProviderSettings(provider.name, {**provider.settings, "format": file_format})


def _canvas_produces(config: ProviderConfig) -> tuple[str, ...] | None:
    assert isinstance(config, CustomersCanvasSettings)
    return config.output_formats


def _canvas_apply(provider: ProviderSettings, file_format: str) -> ProviderSettings:
    # The pipeline decides what Customer's Canvas outputs; the check is the only lever.
    return provider


FORMAT_SUPPORT: Mapping[ProviderName, FormatSupport] = {
    ProviderName.CHILI: FormatSupport(_chili_produces, _chili_apply, "it produces"),
    ProviderName.CUSTOMERS_CANVAS: FormatSupport(
        _canvas_produces, _canvas_apply, "its pipeline outputs (provider.outputFormats)"
    ),
}


def check_file_format(
    step_id: str, file_format: str, provider: ProviderSettings, config: ProviderConfig
) -> str:
    """The normalised format when ``provider`` can produce it; else :class:`UnsupportedFileFormat`.

    ``config`` is the provider's validated settings (``parse_provider_settings``).
    """
    support = FORMAT_SUPPORT[provider.name]
    wanted = normalise_format(file_format)
    produced = support.produces(config)
    if produced is not None and wanted not in produced:
        raise UnsupportedFileFormat(
            f"step {step_id!r}: fileFormat {file_format!r} cannot be produced by provider "
            f"{provider.name.value} ({support.described_as}: {', '.join(produced)})"
        )
    return wanted


def settings_for_step(
    step_id: str,
    file_format: str | None,
    provider: ProviderSettings,
    config: ProviderConfig,
) -> ProviderSettings:
    """The provider settings one render step uses: the storefront's, with the step's format."""
    if file_format is None:
        return provider
    wanted = check_file_format(step_id, file_format, provider, config)
    return FORMAT_SUPPORT[provider.name].apply(provider, wanted)
