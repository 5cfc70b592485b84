"""Schedules and durations as written in the config: `every 15m`, `daily at 03:00`, `30m`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_EVERY = re.compile(r"^\s*every\s+(\d+\s*[smhd])\s*$")
_DAILY = re.compile(r"^\s*daily\s+at\s+(\d{1,2}):(\d{2})\s*$")

SCHEDULE_HELP = "use 'every 30s', 'every 15m', 'every 2h', 'every 1d' or 'daily at 03:00' (UTC)"
DURATION_HELP = "use a number and a unit: '90s', '30m', '2h' or '1d'"


# No duration we read means more than a century; a larger one would overflow the date
# arithmetic it feeds (`now - 99999999999999d`).
MAX_DURATION_DAYS = 36500


class DurationRangeError(ValueError):
    """A well-formed duration that is zero or too long (`seconds`: what it said)."""

    def __init__(self, message: str, seconds: int) -> None:
        super().__init__(message)
        self.seconds = seconds


def parse_duration(text: str) -> int:
    """Seconds in a duration like `30m`; ValueError with the accepted forms otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: {DURATION_HELP}")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds == 0:
        raise DurationRangeError(f"duration {text.strip()!r} must be greater than zero", 0)
    if seconds > MAX_DURATION_DAYS * 86400:
        raise DurationRangeError(
            f"duration {text.strip()!r} is too long: use at most {MAX_DURATION_DAYS}d", seconds
        )
    return seconds


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Schedule:
    """Either every `interval_seconds`, or once a day at `daily_at` (UTC)."""

    interval_seconds: int | None = None
    daily_at: time | None = None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        if match := _EVERY.match(text):
            return cls(interval_seconds=parse_duration(match.group(1)))
        if match := _DAILY.match(text):
            hour, minute = int(match.group(1)), int(match.group(2))
            if hour < 24 and minute < 60:
                return cls(daily_at=time(hour, minute))
        raise ValueError(f"invalid schedule {text!r}: {SCHEDULE_HELP}")

    def __str__(self) -> str:
        if self.daily_at is not None:
            return f"daily at {self.daily_at:%H:%M}"
        return f"every {format_duration(self.interval_seconds or 0)}"

    def next_run(self, last: datetime | None, now: datetime) -> datetime:
        """When a stack last scanned at `last` is due next (never scanned: now)."""
        if last is None:
            return now
        if self.daily_at is not None:
            slot = datetime.combine(last.astimezone(UTC).date(), self.daily_at, tzinfo=UTC)
            if slot <= last:
                slot += timedelta(days=1)
            return max(slot, now)
        return max(last + timedelta(seconds=self.interval_seconds or 0), now)
