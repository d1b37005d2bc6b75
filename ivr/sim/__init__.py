"""Test phones, the demo caller and the customer simulator: imported by nothing in production."""
