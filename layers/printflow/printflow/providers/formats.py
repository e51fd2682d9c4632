"""The flow's ``fileFormat``: which formats each render provider can produce, and how the
step's choice reaches the provider.

A ``generate-production-files`` step may name the format it wants (the seed's example says
``stl``). A format the storefront's provider can produce is honoured; one it cannot is
refused with a message naming the step, the provider and the format. What each provider
produces is its spec's ``formats`` (``providers/<name>.py``):

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
for a refused format).
"""

from __future__ import annotations

from collections.abc import Mapping

from printflow.domain.storefront import ProviderSettings
from printflow.errors import ValidationError
from printflow.providers.registry import spec_for
from printflow.providers.spec import ProviderConfig

# Spellings of one format that providers treat as the same output.
FORMAT_ALIASES: Mapping[str, str] = {"jpeg": "jpg", "tif": "tiff"}


class UnsupportedFileFormat(ValidationError):
    """The step asks for a format its storefront's provider cannot produce."""


def normalise_format(file_format: str) -> str:
    """Lower case, aliases folded (``JPEG`` -> ``jpg``)."""
    lowered = file_format.strip().lower().lstrip(".")
    return FORMAT_ALIASES.get(lowered, lowered)


def check_file_format(
    step_id: str, file_format: str, provider: ProviderSettings, config: ProviderConfig
) -> str:
    """The normalised format when ``provider`` can produce it; else :class:`UnsupportedFileFormat`.

    ``config`` is the provider's validated settings (``parse_provider_settings``).
    """
    support = spec_for(provider.name.value).formats
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
    return spec_for(provider.name.value).formats.apply(provider, wanted)
