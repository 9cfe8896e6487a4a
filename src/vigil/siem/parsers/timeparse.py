"""Timestamps shared by the text parsers: year-less syslog stamps, RFC 3339, epoch milliseconds.

Every function returns an aware UTC ``datetime`` or raises ``ParseError`` with the reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigil.siem.parsers.base import ParseContext, ParseError

MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}

# A year-less stamp may be this far ahead of the time it was received (clocks drift); further, it is last year's.
FUTURE_TOLERANCE = timedelta(days=2)

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})?"
)
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")


def month_number(name: str) -> int:
    number = MONTHS.get(name[:3].lower()) if len(name) >= 3 else None
    if number is None:
        raise ParseError(f"unknown month {name!r}")
    return number


def _micro(fraction: str | None) -> int:
    return int((fraction or "0")[:6].ljust(6, "0"))


def resolve_yearless(
    month: int, day: int, hour: int, minute: int, second: int, ctx: ParseContext, *,
    microsecond: int = 0, zone: tzinfo | None = None,
) -> datetime:
    """A stamp without a year (``Dec 31 23:59:59``) in the year that puts it closest to ``ctx.received_at``
    without lying more than ``FUTURE_TOLERANCE`` in the future: December stamps received in January are last year's."""
    tz = zone or ctx.timezone
    received = ctx.received_at if ctx.received_at.tzinfo else ctx.received_at.replace(tzinfo=UTC)
    base_year = received.astimezone(tz).year
    best: datetime | None = None
    for year in range(base_year + 1, base_year - 5, -1):  # back to the last leap year, for Feb 29
        try:
            candidate = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)
        except ValueError:
            continue
        if candidate - received > FUTURE_TOLERANCE:
            continue
        if best is None or abs(candidate - received) < abs(best - received):
            best = candidate
    if best is None:
        raise ParseError(f"invalid date: month {month} day {day} {hour:02d}:{minute:02d}:{second:02d}")
    return best.astimezone(UTC)


def parse_offset(text: str) -> tzinfo | None:
    """``+08:00``/``-0700``/``Z``/``UTC``/``GMT``/an IANA name as a zone; None when unknown."""
    if text in ("Z", "z", "UTC", "GMT", "UT"):
        return UTC
    match = _OFFSET.fullmatch(text)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        hours, minutes = int(match.group(2)), int(match.group(3))
        if hours > 23 or minutes > 59:
            return None
        offset = sign * timedelta(hours=hours, minutes=minutes)
        return UTC if not offset else timezone(offset)
    if "/" in text and re.fullmatch(r"[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)+", text):
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return None
    return None


def parse_rfc3339(text: str, ctx: ParseContext) -> datetime:
    """``2003-10-11T22:14:15.003Z`` / ``...+08:00``; a stamp without offset is in ``ctx.timezone``."""
    # Fast path (C code) for the common shape; anything it refuses (leap seconds, lower-case z...) takes
    # the regular expression below, which decides what is valid.
    if len(text) >= 19 and text[4] == "-" and text[7] == "-" and text[10] in "T " and text[13] == ":" \
            and text[16] == ":":
        try:
            quick = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return (quick if quick.tzinfo is not None else quick.replace(tzinfo=ctx.timezone)).astimezone(UTC)
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ParseError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    zone: tzinfo | None = ctx.timezone
    if match.group(8):
        zone = parse_offset(match.group(8))
        if zone is None:
            raise ParseError(f"bad time zone offset {match.group(8)!r}")
    try:
        stamp = datetime(year, month, day, hour, minute, min(second, 59), _micro(match.group(7)), tzinfo=zone)
    except ValueError as exc:
        raise ParseError(f"invalid timestamp {text[:40]!r}: {exc}") from None
    return stamp.astimezone(UTC)


def from_epoch(value: str) -> datetime:
    """Epoch seconds or milliseconds (13 digits or more) as UTC."""
    try:
        number = float(value)
    except ValueError:
        raise ParseError(f"not an epoch time: {value[:40]!r}") from None
    if number != number or abs(number) > 1e16:  # NaN or beyond any date
        raise ParseError(f"epoch time out of range: {value[:40]!r}")
    seconds = number / 1000 if abs(number) >= 1e11 else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"epoch time out of range: {value[:40]!r}") from None


_BSD_STAMP = re.compile(
    r"([A-Za-z]{3}) {1,2}(\d{1,2}) (?:(\d{4}) )?(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?: |$)"
)
_ISO_PREFIX = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|z|[+-]\d{2}:?\d{2})?)(?: |$)")


def parse_bsd_stamp(text: str, ctx: ParseContext) -> tuple[datetime, str] | None:
    """The stamp a classic syslog line starts with and the rest of the line; None when it starts with none.

    ``Feb  5 10:00:00`` (year and zone from the context), ``Feb  5 2024 10:00:00`` (some network devices)
    and the ISO stamps rsyslog writes in its RFC 3164 mode (``2024-02-05T10:00:00.123+08:00``)."""
    match = _BSD_STAMP.match(text)
    if match:
        month = MONTHS.get(match.group(1).lower())
        if month is None:
            return None
        day, hour, minute, second = int(match.group(2)), int(match.group(4)), int(match.group(5)), int(match.group(6))
        if hour > 23 or minute > 59 or second > 60:
            raise ParseError(f"invalid time {match.group(0).strip()!r}")
        micro = _micro(match.group(7))
        if match.group(3):
            try:
                local = datetime(int(match.group(3)), month, day, hour, minute, min(second, 59), micro,
                                 tzinfo=ctx.timezone)
            except ValueError as exc:
                raise ParseError(f"invalid date {match.group(0).strip()!r}: {exc}") from None
            stamp = local.astimezone(UTC)
        else:
            stamp = resolve_yearless(month, day, hour, minute, min(second, 59), ctx, microsecond=micro)
        return stamp, text[match.end():]
    match = _ISO_PREFIX.match(text)
    if match:
        return parse_rfc3339(match.group(1), ctx), text[match.end():]
    return None
