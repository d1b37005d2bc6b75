"""Tests against real back ends here: PostgreSQL, Redis, the recogniser, TTS, the local LLM."""
