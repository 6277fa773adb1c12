"""Change-data events: a transactional outbox, a relay to Kafka and a consumer framework.

Install as a Django app (`strangler.cdc`) in the project that owns the data (capture + relay)
and in the project that receives it (consumer). See docs/cdc.md.
"""
