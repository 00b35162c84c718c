"""
Several server processes as one chat: PostgreSQL holds the data, Redis
carries fan-out, membership changes and presence between them (the bus).
Only loaded with C{--redis}; a single node never imports it.
"""
