"""Order services shared by several functions, outside the intake and render packages.

- :mod:`printflow.orders.completion`: a thin order (BigCommerce's webhook names it only)
  completed from its store API, used by the render start;
- :mod:`printflow.orders.sweep`: the stuck-order sweep that starts orders whose flow never
  started, run by the poller.
"""
