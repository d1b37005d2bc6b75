"""The composition root: start-up parts and ``ivr up``."""
