"""Step types: one module per type, found through :mod:`printflow.flows.step_types.registry`.

Each module (``generate_production_files``, ``consume_rest_api``, ``send_email``,
``update_storefront_order``) holds its type's :class:`~printflow.flows.step_types.spec.
StepTypeSpec`: option keys and parser, options dataclass, compiled task shape and function,
storefront fit check. Nothing outside these modules knows what a given type does; the
validator, the compiler and the storefront fit check ask the registry.
"""
