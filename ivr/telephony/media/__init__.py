"""Call audio: RTP framing, codecs, the externalMedia tap."""
