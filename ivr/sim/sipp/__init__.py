"""SIPp scenarios of the project's test callers (``ivr drill load`` plays keys.xml)."""
