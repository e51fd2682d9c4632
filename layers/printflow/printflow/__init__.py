"""PrintFlow: storefront orders to print-ready files in S3.

Layout of the library:

- ``domain``   - plain data: orders, storefronts, flows, render jobs. No I/O.
- ``intake``   - webhook verification and normalisation, and the intake service.
- ``adapters`` - the only modules that talk to AWS or HTTP.
"""
