"""The ``StatusIndex`` attributes, built inside the state machine's status updates.

An order appears in the index under ``{storefrontId}#{status}`` (see
:func:`printflow.adapters.order_table.status_index_attributes`). A status state knows its
status when it is compiled and the storefront from the execution input, so the key is one
``States.Format`` call: no Lambda, no extra state transition.
"""

from __future__ import annotations

from typing import Any

# Characters ASL intrinsic string literals must escape (the spec: ' { } \).
_INTRINSIC_ESCAPES = str.maketrans({"'": "\\'", "{": "\\{", "}": "\\}", "\\": "\\\\"})

STATUS_INDEX_EXPRESSION = "#statusKey = :statusKey, #statusAt = :at"


def status_key_value(status: str) -> dict[str, Any]:
    """The DynamoDB value of ``statusKey`` for an order entering ``status``."""
    literal = status.translate(_INTRINSIC_ESCAPES)
    return {"S.$": f"States.Format('{{}}#{literal}', $.order.storefrontId)"}
