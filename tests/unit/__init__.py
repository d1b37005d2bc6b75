"""Fast tests: pure Python, no services, no models."""
