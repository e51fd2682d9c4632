"""fileFormat against the providers' formats (issue 12 §4), no AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from printflow.domain.storefront import Platform, ProviderName, ProviderSettings, Storefront
from printflow.errors import ValidationError
from printflow.flows import parse_flow
from printflow.providers.formats import (
    UnsupportedFileFormat,
    check_file_format,
    normalise_format,
    settings_for_step,
)
from printflow.providers.registry import parse_provider_settings
from printflow.storefront_flows import check_flow_fits_storefront, misfits

SEED_FLOW = json.loads((Path(__file__).parent / "fixtures" / "seed_flow.json").read_text())
CHILI = ProviderSettings(
    ProviderName.CHILI,
    {
        "environment": "acme",
        "baseUrl": "https://acme.chili-publish.online",
        "credentialsSecret": "printflow/providers/chili",
        "templateId": "poster",
        "outputSettingsId": "print-pdf",
    },
)


def canvas(**extra: Any) -> ProviderSettings:
    return ProviderSettings(
        ProviderName.CUSTOMERS_CANVAS,
        {
            "baseUrl": "https://api.customerscanvashub.com",
            "credentialsSecret": "printflow/providers/cc",
            "storefrontId": 42,
            **extra,
        },
    )


def storefront(provider: ProviderSettings, flow: str = "seed") -> Storefront:
    return Storefront("shop-1", Platform.SHOPIFY, flow=flow, provider=provider)


@pytest.mark.parametrize("wanted", ["pdf", "png", "jpg", "JPEG", "gif", "mp4"])
def test_chili_makes_its_five_formats_and_the_step_s_choice_replaces_the_storefront_s(
    wanted: str,
) -> None:
    settings = settings_for_step("generate", wanted, CHILI, parse_provider_settings(CHILI))
    assert settings.settings["format"] == normalise_format(wanted)
    assert CHILI.settings.get("format") is None  # the storefront's own settings unchanged


def test_chili_refuses_stl_naming_step_provider_and_format() -> None:
    with pytest.raises(UnsupportedFileFormat) as refused:
        check_file_format("generate", "stl", CHILI, parse_provider_settings(CHILI))
    assert str(refused.value) == (
        "step 'generate': fileFormat 'stl' cannot be produced by provider chili "
        "(it produces: pdf, png, jpg, gif, mp4)"
    )


def test_no_file_format_keeps_the_storefront_settings() -> None:
    assert settings_for_step("generate", None, CHILI, parse_provider_settings(CHILI)) is CHILI


def test_canvas_formats_are_checked_only_when_the_pipeline_outputs_are_declared() -> None:
    unknown = canvas()
    assert check_file_format("g", "stl", unknown, parse_provider_settings(unknown)) == "stl"
    declared = canvas(outputFormats=["pdf", "png"])
    config = parse_provider_settings(declared)
    assert check_file_format("g", "PDF", declared, config) == "pdf"
    with pytest.raises(UnsupportedFileFormat, match=r"provider customers-canvas .*pdf, png"):
        check_file_format("g", "stl", declared, config)


@pytest.mark.parametrize("bad", [[], "pdf", ["PDF"], [1], ["pdf"] * 21])
def test_canvas_output_formats_must_be_a_list_of_format_names(bad: Any) -> None:
    with pytest.raises(ValidationError, match=r"provider.outputFormats"):
        parse_provider_settings(canvas(outputFormats=bad))


def test_the_seed_flow_still_compiles_but_does_not_fit_a_chili_storefront() -> None:
    flow = parse_flow(SEED_FLOW)  # unchanged: the seed's own example
    with pytest.raises(ValidationError, match="storefront 'shop-1' with flow 'seed': step"):
        check_flow_fits_storefront(flow, storefront(CHILI))
    check_flow_fits_storefront(flow, storefront(canvas()))  # CC: not knowable, accepted
    problems = misfits(flow, [storefront(CHILI), storefront(canvas(outputFormats=["stl"]))])
    assert len(problems) == 1 and "provider chili" in problems[0]
