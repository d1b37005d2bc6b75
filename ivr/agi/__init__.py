"""FastAGI: the same sessions and bots for dialplan-centric sites (``AGI(agi://host:port/hotline)``)."""
