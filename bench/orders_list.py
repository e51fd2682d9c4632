"""``printflow orders list`` over a large table: time, and query pages per failed order.

Run from the repository root: ``.venv/bin/python bench/orders_list.py [--orders 100000]
[--failed-per-mille 10] [--smoke]``.

moto runs as a server in its own process with the local stack's corrections
(:mod:`printflow_tools.localstack.fidelity`: an index query reads only its partition, as on
DynamoDB, where plain moto walks the whole table; items are measured, copied, projected and
encoded into the answer directly, where plain moto spends most of a page's time); the order
table is created from template.yaml (its StatusIndex included) and bulk-loaded with
``BatchWriteItem``: orders spread over a few storefronts and statuses, ~1% of them Failed. Then
the listing the CLI runs (:func:`printflow.operations.orders.list_orders`, ``--status Failed``,
every storefront) is timed, and its DynamoDB requests are counted with a botocore hook.
Figures: load time, list time, orders listed, query pages and pages per 100 failed orders (1 is
the target: the index is queried, never scanned). The last line is one JSON object with
``orders``, ``failed``, ``list_seconds``. ``--smoke`` runs 2,000 orders in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="printflow",
    POWERTOOLS_LOG_LEVEL="ERROR",
    POWERTOOLS_METRICS_DISABLED="true",
)
STOREFRONTS = ("bench-a", "bench-b", "bench-c", "bench-d")
OTHER_STATUSES = ("Success", "In progress", "Received")


def order_items(count: int, failed_per_mille: int) -> tuple[list[dict[str, Any]], int]:
    """Realistic order items (as intake writes them), ~failed_per_mille of 1000 Failed."""
    from printflow.adapters.order_table import NewOrderRecord, status_index_attributes
    from printflow.domain.order import LineItem, Order, OrderKey, RawBodyRef

    items, failed = [], 0
    for i in range(count):
        key = OrderKey(STOREFRONTS[i % len(STOREFRONTS)], f"{100000 + i}")
        clock = f"{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}"
        at = f"2026-12-0{1 + i % 2}T{clock}.000+00:00"
        order = Order(key, "shopify", str(i), f"#{i}", "jane@example.org", "EUR", at,
                      (LineItem("1", "Poster A2", 1, "POSTER-A2"),))  # fmt: skip
        item = NewOrderRecord(
            order, RawBodyRef("b", f"webhooks/{key}"), "default", at, 0, 4
        ).to_item("bench")
        item.pop("dueShard"), item.pop("dueAt")
        if i % 1000 < failed_per_mille:
            failed += 1
            error = {"step": "generate", "error": "Render.Failed", "cause": "font missing"}
            item.update(status="Failed", currentStep="error", error=error,
                        **status_index_attributes(key, "Failed", at))  # fmt: skip
        else:
            status = OTHER_STATUSES[i % len(OTHER_STATUSES)]
            item.update(status=status, **status_index_attributes(key, status, at))
        items.append(item)
    return items, failed


def bulk_load(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> None:
    from printflow.adapters.dynamo_types import serialize_item

    batches = [items[i : i + 25] for i in range(0, len(items), 25)]

    def write(batch: list[dict[str, Any]]) -> None:
        request = {table: [{"PutRequest": {"Item": serialize_item(i)}} for i in batch]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, batches))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--failed-per-mille", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="2,000 orders: a few seconds")
    args = parser.parse_args()
    count = 2_000 if args.smoke else args.orders

    import boto3

    from printflow.adapters.order_table import OrderTable
    from printflow.operations.orders import ListingStats, list_orders
    from printflow.platforms.documents import storefront_from_document
    from printflow_tools.bench_servers import moto_server
    from printflow_tools.localstack.resources import create_table_from_template

    with moto_server() as endpoint:
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        table_name = create_table_from_template(dynamodb, "bench-orders")
        table = OrderTable(dynamodb, table_name)
        for storefront_id in STOREFRONTS:
            table.put_storefront(
                storefront_from_document(
                    {"storefrontId": storefront_id, "platform": "generic", "flow": "default"}
                ),
                "2026-12-01T00:00:00+00:00",
            )
        items, failed = order_items(count, args.failed_per_mille)
        started = time.perf_counter()
        bulk_load(dynamodb, table_name, items)
        load_s = time.perf_counter() - started
        print(f"loaded {count:,} orders in {load_s:.1f} s", flush=True)

        calls: list[str] = []
        dynamodb.meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
        )
        stats = ListingStats()
        started = time.perf_counter()
        rows = list(list_orders(table, statuses=["Failed"], stats=stats))
        list_s = time.perf_counter() - started
        # The cost of one empty index query page: with the partition correction it no
        # longer grows with the table (plain moto: ~0.5 s per page on 100,000 orders).
        started = time.perf_counter()
        table.orders_in_status(STOREFRONTS[0], "NoSuchStatus", page_size=1)
        floor_s = time.perf_counter() - started

    queries = calls.count("Query") - 1  # the empty-page query
    listing_queries = queries - 1  # the first Query lists the storefronts
    pages_per_100 = listing_queries / max(1.0, failed / 100)
    ok = len(rows) == failed and "Scan" not in calls
    print(f"orders in the table     {count:>9,}  (bulk load {load_s:.1f} s)")
    print(f"failed orders           {failed:>9,}  listed {len(rows):,}")
    print(f"orders list --status Failed: {list_s:.3f} s "
          f"({listing_queries} index query pages over {len(STOREFRONTS)} storefronts, "
          f"{pages_per_100:.2f} per 100 failed; scans: {calls.count('Scan')})")  # fmt: skip
    print(f"one empty index query page costs {floor_s:.3f} s on this table "
          f"(x{queries} queries = {floor_s * queries:.3f} s of the list time)")  # fmt: skip
    print(json.dumps({
        "orders": count, "failed": failed, "listed": len(rows), "list_seconds": round(list_s, 3),
        "query_pages": listing_queries, "pages_per_100_failed": round(pages_per_100, 2),
        "scans": calls.count("Scan"), "load_seconds": round(load_s, 1),
        "empty_query_seconds": round(floor_s, 3),
    }))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
