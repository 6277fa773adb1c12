"""The catalog service: products and categories carved out of the shop monolith.

Its database is filled by change-data events from the monolith (snapshot + stream, through
`strangler.cdc`) and it serves the same /api/v1/products and /api/v1/categories contract.
"""
