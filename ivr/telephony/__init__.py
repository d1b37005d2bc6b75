"""Wire protocols to Asterisk (ARI, AMI, RTP media): framing and transport, no decisions."""
