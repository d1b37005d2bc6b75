# Asterisk 22 from Debian sid, the same packages development and CI use in their chroot.
FROM debian:sid
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      asterisk asterisk-modules asterisk-moh-opsound-wav \
 && rm -rf /var/lib/apt/lists/*
# configuration is rendered by the ivr image (`ivr asterisk-config`) into the shared volume
CMD ["sh", "-c", "mkdir -p /var/run/asterisk-ivr /var/spool/asterisk-ivr /var/log/asterisk-ivr /var/lib/asterisk/db-ivr && exec asterisk -f -n -C /etc/asterisk-ivr/asterisk.conf"]
