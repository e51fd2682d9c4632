"""Storefront platforms: one module each, found through :mod:`.registry`.

Each module (``shopify``, ``woocommerce``, ``bigcommerce``, ``generic``) builds one
:class:`~.base.PlatformSpec`: its verifier, its normaliser, its order topics, its quirks and the
settings it adds to a storefront. :mod:`.documents` reads storefront documents with the table.

A lower layer: it builds on ``domain``, ``errors``, ``validators`` and ``signing`` only, so the
intake, the adapters (stored storefronts) and the tools can all use it. This package imports
nothing itself, so a platform module can import the shared pieces (``fields``, ``base``,
``signatures``, ``json_body``) without a cycle.
"""
