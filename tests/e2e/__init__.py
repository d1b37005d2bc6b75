"""End-to-end: real SIP calls through the real Asterisk; web pages in headless Chromium."""
