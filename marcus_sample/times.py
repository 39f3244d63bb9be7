"""Sample time: integer microseconds since the Unix epoch (UTC), and the formats Marcus writes."""

from __future__ import annotations

import datetime as dt
import functools

US = 1_000_000
MIN = 60 * US
HOUR = 60 * MIN
DAY = 24 * HOUR
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def epoch_us(day: dt.date) -> int:
    """Return microseconds since the Unix epoch at 00:00 UTC of `day`."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY


def us_to_datetime(us: int) -> dt.datetime:
    """Return the aware UTC datetime for epoch microseconds."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


@functools.cache
def day_iso(day: int) -> str:
    """Return the ISO date of a day number counted from the epoch."""
    return dt.date.fromordinal(day + _EPOCH_ORDINAL).isoformat()


def _clock(us: int) -> tuple[str, int]:
    sec, frac = divmod(us, US)
    day, sod = divmod(sec, 86_400)
    hour, rem = divmod(sod, 3600)
    minute, second = divmod(rem, 60)
    return f"{day_iso(day)}T{hour:02d}:{minute:02d}:{second:02d}", frac


def iso_utc(us: int) -> str:
    """Format epoch microseconds as Python's `isoformat()` of an aware UTC datetime."""
    base, frac = _clock(us)
    return f"{base}.{frac:06d}+00:00" if frac else f"{base}+00:00"


def iso_z(us: int) -> str:
    """Format epoch microseconds as structlog's ISO timestamp (`...Z`, fraction optional)."""
    base, frac = _clock(us)
    return f"{base}.{frac:06d}Z" if frac else f"{base}Z"


def naive_seconds(us: int) -> str:
    """Format as `YYYY-MM-DD HH:MM:SS` without a zone (legacy audit lines)."""
    return _clock(us)[0].replace("T", " ")


def file_date(us: int) -> str:
    """Format the UTC date as `YYYYMMDD`, as in daily log file names."""
    return day_iso(us // DAY).replace("-", "")


def file_stamp(us: int) -> str:
    """Format as `YYYYMMDD_HHMMSS`, as in per-process log file names."""
    base = _clock(us)[0]
    return base[:10].replace("-", "") + "_" + base[11:].replace(":", "")


def ms_z(us: int) -> str:
    """SQLite's strftime('%Y-%m-%dT%H:%M:%fZ'): costs.db defaults, planner rows."""
    return us_to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.") + f"{us // 1000 % 1000:03d}Z"


def ms_iso(us: int) -> str:
    """isoformat() of a millisecond timestamp: worker rows ingested from Claude Code JSONL."""
    return iso_utc(us - us % 1000)


def sqlite_now(us: int) -> str:
    """SQLite CURRENT_TIMESTAMP: marcus.db `stored_at`."""
    return us_to_datetime(us).strftime("%Y-%m-%d %H:%M:%S")


def epoch_seconds(us: int) -> str:
    """Seconds since the epoch with six decimals: project_history `timestamp`."""
    return f"{us / US:.6f}"
