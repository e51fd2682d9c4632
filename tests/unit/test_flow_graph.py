"""The Mermaid drawing of a flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from printflow.flows import parse_flow, render_mermaid

SEED: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "seed_flow.json").read_text()
)

SEED_CHART = """\
flowchart TD
    flow_start([start]) --> s0
    s0["generate<br/>generate-production-files<br/>status: In progress"]
    s1["consume<br/>consume-rest-api<br/>status: In progress"]
    s2["email<br/>send-email<br/>status: Success"]
    s3["error<br/>send-email<br/>status: Failed"]
    s0 --> s1
    s0 -. onError .-> s3
    s1 --> s2
    s1 -. onError .-> s3
    s2 --> flow_succeeded
    s2 -. onError .-> s3
    s3 --> flow_failed
    s3 -. error .-> flow_failed
    flow_succeeded([end])
    flow_failed(["order Failed"])
"""


def test_seed_flow_chart() -> None:
    assert render_mermaid(parse_flow(SEED)) == SEED_CHART


def test_chart_is_deterministic() -> None:
    flow = parse_flow(SEED)
    assert render_mermaid(flow) == render_mermaid(parse_flow(SEED))


def test_labels_are_escaped_and_step_ids_never_become_node_ids() -> None:
    flow = parse_flow(
        [
            {
                "stepDefinitionId": "end",
                "type": "consume-rest-api",
                "successStatus": 'Sent "to" <ERP> #1',
                "options": {"uri": "https://example.com"},
            }
        ]
    )

    chart = render_mermaid(flow)

    assert 's0["end<br/>consume-rest-api<br/>status: Sent #quot;to#quot; #lt;ERP#gt; #35;1"]' in (
        chart
    )
    assert "\n    end" not in chart
    assert "s0 --> flow_succeeded" in chart
    assert "s0 -. error .-> flow_failed" in chart


def test_terminal_nodes_only_when_used() -> None:
    flow = parse_flow(
        [
            {
                "stepDefinitionId": "a",
                "type": "consume-rest-api",
                "successStatus": "x",
                "options": {"uri": "https://example.com"},
                "onSuccess": "b",
                "onError": "b",
            },
            {
                "stepDefinitionId": "b",
                "type": "consume-rest-api",
                "successStatus": "y",
                "options": {"uri": "https://example.com"},
            },
        ]
    )

    chart = render_mermaid(flow)

    assert chart.count("flow_succeeded([end])") == 1
    assert "s0 -. error .->" not in chart
    assert "s1 -. error .-> flow_failed" in chart
