"""The write-back flow on the local stack, driven over HTTP like a shop (issue 12 §1): the
order renders, then the shop sandbox has PrintFlow's tag and a note with the file links."""

from __future__ import annotations

import pytest

from printflow_tools.localstack.environment import LocalEnvironment

from .test_local_stack import deliver, shopify_order, wait_for_status

pytestmark = pytest.mark.e2e


def test_the_shop_hears_back_with_a_tag_and_the_file_links(local_stack: LocalEnvironment) -> None:
    local_stack.shop.add_order("9100001", tags=["gift"])

    status, answer = deliver(local_stack, "shopify", "demo-shop-tags", shopify_order("9100001"))
    assert (status, answer["orderKey"]) == (202, "demo-shop-tags/9100001")

    view = wait_for_status(local_stack, "demo-shop-tags", "9100001")
    assert view["status"] == "Success", view
    assert [h.get("step") for h in view["statusHistory"]] == [
        None,
        "generate",
        "tell-shop",
        "consume",
        "email",
    ]
    held = local_stack.shop.order("9100001")
    assert held.tags == ["gift", "printflow-files-ready"]
    note = held.metafields[("printflow", "note-tell-shop")]["value"]
    assert note.startswith("PrintFlow made the print files of order #1042:")
    keys = [a["key"] for a in view["artifacts"]]
    assert len(keys) == 2 and all(key in note for key in keys)
