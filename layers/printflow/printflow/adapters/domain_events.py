"""Domain events on EventBridge, for consumers (DAM systems, printers, dashboards)."""

from __future__ import annotations

import json
from typing import Any

EVENT_SOURCE = "printflow"
ARTIFACTS_READY = "ArtifactsReady"


class DomainEvents:
    def __init__(self, client: Any, bus_name: str = "default") -> None:
        self._client = client
        self.bus_name = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        response = self._client.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, separators=(",", ":"), default=str),
                    "EventBusName": self.bus_name,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            failed = response["Entries"][0]
            raise RuntimeError(f"event not published: {failed.get('ErrorCode')}")
