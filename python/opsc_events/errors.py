"""Typed errors. Every decode error carries the dead-letter reason the Rust runtime gives it."""

from __future__ import annotations


class OpscError(Exception):
    """The base of every error of this package."""


class EncodeError(OpscError, ValueError):
    """A value that does not fit its shape (an integer out of range, a wrong type, ...)."""


class DecodeError(OpscError, ValueError):
    """An entry that cannot be decoded (docs/WIRE.md § Decoding rules and errors)."""

    #: The dead-letter reason of this error: ``decode_error`` or ``schema_mismatch``.
    reason = "decode_error"


class MissingField(DecodeError):
    def __init__(self, field: str) -> None:
        super().__init__(f"missing field {field!r}")
        self.field = field


class InvalidField(DecodeError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid field {field!r}: {reason}")
        self.field = field
        self.detail = reason


class NotMessagePack(DecodeError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field!r} is not MessagePack: {reason}")
        self.field = field
        self.detail = reason


class UnknownEventType(DecodeError):
    """Not the decoder's type: a consumer acknowledges and skips such an entry."""

    reason = ""

    def __init__(self, event_type: str, expected: str) -> None:
        super().__init__(f"event type {event_type!r}, expected {expected!r}")
        self.event_type = event_type
        self.expected = expected


class UnknownVersion(DecodeError):
    reason = "schema_mismatch"

    def __init__(self, event_type: str, version: int, known: list[int]) -> None:
        super().__init__(f"{event_type} version {version} is unknown (known: {known})")
        self.event_type = event_type
        self.version = version
        self.known = known


class FingerprintMismatch(DecodeError):
    reason = "schema_mismatch"

    def __init__(self, event_type: str, version: int, expected: int, found: int) -> None:
        super().__init__(
            f"{event_type}@{version}: fingerprint {found:016x}, expected {expected:016x}"
        )
        self.event_type = event_type
        self.version = version
        self.expected = expected
        self.found = found


class DataMismatch(DecodeError):
    def __init__(self, event_type: str, version: int, reason: str) -> None:
        super().__init__(f"{event_type}@{version}: payload does not fit: {reason}")
        self.event_type = event_type
        self.version = version
        self.detail = reason


class PermanentError(OpscError):
    """Raised by a handler for a failure no retry can fix: dead-lettered at once as ``permanent``."""
