"""Order flows: Twikit step definitions validated, compiled to Step Functions, drawn."""

from printflow.flows.compiler import compile_flow, compile_flow_text, render_definition
from printflow.flows.graph import render_mermaid
from printflow.flows.model import OrderFlow, RetryPolicy, Step, StepType
from printflow.flows.validation import parse_flow, parse_flow_json

__all__ = [
    "OrderFlow",
    "RetryPolicy",
    "Step",
    "StepType",
    "compile_flow",
    "compile_flow_text",
    "parse_flow",
    "parse_flow_json",
    "render_definition",
    "render_mermaid",
]
