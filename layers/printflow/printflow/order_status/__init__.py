"""The order status API: the public document of an order, read from the order table.

- :mod:`printflow.order_status.view`: the stored item projected onto the status document;
- :mod:`printflow.order_status.wiring`: the composition root of the order-status function.
"""
