"""The README's default-flow diagram is the one `printflow flow graph` draws today."""

from __future__ import annotations

import json

from printflow.flows.graph import render_mermaid
from printflow.flows.validation import parse_flow
from printflow_tools.localstack.template import REPO_ROOT


def test_the_readme_shows_the_current_default_flow() -> None:
    flow = parse_flow(json.loads((REPO_ROOT / "flows" / "default.json").read_text()))
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"```mermaid\n{render_mermaid(flow)}```" in readme, (
        "README.md is stale: paste `printflow flow graph flows/default.json` into it"
    )
