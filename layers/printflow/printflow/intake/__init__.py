"""Order intake: the service that turns one webhook delivery into one recorded order.

What a platform's delivery means (headers, signature, payload) is the platform's module in
:mod:`printflow.platforms`; code that holds a platform id and a body normalises it with
:func:`printflow.platforms.registry.normalise`.
"""
