"""A call's life: session, call manager, listener, journal, channel adapters."""
