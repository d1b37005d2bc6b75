"""Command line, evaluation, benchmarks and drills: imported by nothing in production."""
