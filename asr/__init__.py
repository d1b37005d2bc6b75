"""Streaming Mandarin speech recognition: VAD and endpointing, recognisers behind one interface."""
