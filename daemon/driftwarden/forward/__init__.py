"""Transports that carry audit events off the host: a syslog server (RFC 5424 over TCP,
octet counting, TLS optional) and an HTTP endpoint taking NDJSON. What to send and how
far each destination got is the service's (service/trust/forward.py) and the store's."""

from driftwarden.forward.http import HttpSender
from driftwarden.forward.message import Message, Sender
from driftwarden.forward.syslog import SyslogSender

__all__ = ["HttpSender", "Message", "Sender", "SyslogSender"]
