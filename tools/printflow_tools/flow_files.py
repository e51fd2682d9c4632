"""The flows a stack runs, read from a folder of flow files (``flows/{name}.json``)."""

from __future__ import annotations

from pathlib import Path

from printflow.errors import ValidationError
from printflow.flows import parse_flow_json
from printflow.flows.model import OrderFlow

REPO_FLOWS = Path(__file__).resolve().parents[2] / "flows"


def load_flows(folder: Path = REPO_FLOWS) -> dict[str, OrderFlow]:
    """Flow name (the file's stem) -> validated flow; an invalid file names itself."""
    flows: dict[str, OrderFlow] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            flows[path.stem] = parse_flow_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise ValidationError(f"{path}: {exc}") from None
    return flows
