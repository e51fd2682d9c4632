"""Drawing a flow as a Mermaid ``flowchart TD``, for reviews and the README.

Steps get generated node ids (``s0``, ``s1``, ...) rather than their own ids: Mermaid treats
some words (``end``) and letter prefixes (``o``/``x`` after ``--``) specially, and a step id
should never be able to break the chart. The step id is shown in the label instead.
"""

from __future__ import annotations

from printflow.flows.model import OrderFlow, Step

_START = "flow_start"
_SUCCEEDED = "flow_succeeded"
_FAILED = "flow_failed"


def render_mermaid(flow: OrderFlow) -> str:
    """Mermaid source: solid arrows for onSuccess, dashed labelled arrows for onError.

    A last step off the success path ends the order as failed, as the compiled flow does.
    """
    node = {step.id: f"s{index}" for index, step in enumerate(flow.steps)}
    lines = ["flowchart TD", f"    {_START}([start]) --> {node[flow.first.id]}"]
    lines += [f'    {node[step.id]}["{_label(step)}"]' for step in flow.steps]
    ends_ok = False
    ends_failed = False
    success_path = flow.success_path()
    for step in flow.steps:
        source = node[step.id]
        if step.on_success is not None:
            lines.append(f"    {source} --> {node[step.on_success]}")
        elif step.id in success_path:
            lines.append(f"    {source} --> {_SUCCEEDED}")
            ends_ok = True
        else:
            lines.append(f"    {source} --> {_FAILED}")
            ends_failed = True
        if step.on_error is not None:
            lines.append(f"    {source} -. onError .-> {node[step.on_error]}")
        else:
            lines.append(f"    {source} -. error .-> {_FAILED}")
            ends_failed = True
    if ends_ok:
        lines.append(f"    {_SUCCEEDED}([end])")
    if ends_failed:
        lines.append(f'    {_FAILED}(["order Failed"])')
    return "\n".join(lines) + "\n"


def _label(step: Step) -> str:
    return "<br/>".join(
        _escape(part) for part in (step.id, str(step.type), f"status: {step.success_status}")
    )


def _escape(text: str) -> str:
    """Mermaid entity codes, so quotes and markup in a status cannot end the label."""
    replacements = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;"}
    return "".join(replacements.get(ch, ch) for ch in text)
