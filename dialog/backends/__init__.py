"""Business back ends of the scenario bots (fuel cards, invoices, gas billing, work orders).

``base`` holds the interfaces and result types; ``demo`` a PostgreSQL implementation with seed
data (``seed``) for development and tests.
"""
