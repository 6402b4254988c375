"""Is the office open: office hours evaluated at one instant in the account's timezone.

Openings are written in local wall-clock time and turned into real instants before anything is
compared, so daylight-saving changes are handled in one place:

- a time that does not exist (the hour skipped in spring) means the moment the clocks jump;
- a time that occurs twice (the hour repeated in autumn) opens at its first occurrence and closes
  at its last, so an opening never flickers shut and open again inside the repeated hour.

"Today" is the account's local date at that instant, from its first to its last moment (23 or 25
hours long on a change day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from switchboard.contracts.persona import OFFICE_STATUS_TEXT, OfficeStatus, OfficeStatusKind

from persona_svc.model import Holiday, OfficeHours, Span, SpecialHours, Weekday

SEARCH_DAYS = 400
"""How far ahead the next opening is looked for (a year of closures, plus slack)."""


@dataclass(frozen=True, order=True)
class Interval:
    start: datetime
    end: datetime


class Calendar:
    """Office hours indexed by date for one evaluation (a year of exceptions is looked up often)."""

    def __init__(self, hours: OfficeHours) -> None:
        self.hours = hours
        self._exceptions: dict[date, Holiday | SpecialHours] = {
            item.date: item for item in (*hours.holidays, *hours.special_hours)
        }

    def exception_on(self, day: date) -> Holiday | SpecialHours | None:
        return self._exceptions.get(day)

    def spans_on(self, day: date) -> list[Span]:
        exception = self._exceptions.get(day)
        if isinstance(exception, Holiday):
            return []
        if isinstance(exception, SpecialHours):
            return list(exception.spans)
        return list(self.hours.weekly.get(Weekday.of(day), []))


def local_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest real instant at which the local clock shows `wall` (or has just passed it)."""
    return min(_candidates(wall, zone))


def last_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The latest real instant at which the local clock shows `wall` (or has just passed it)."""
    return max(_candidates(wall, zone))


def _candidates(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    instants = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    real = [t for t in instants if local_wall(t, zone) == wall]
    return real or [_end_of_gap(wall, zone, min(instants), max(instants))]


def _end_of_gap(wall: datetime, zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The clocks skipped `wall`: the first whole second in (before, after] whose local time is past it."""
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if local_wall(datetime.fromtimestamp(middle, UTC), zone) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def openings_from(calendar: Calendar, day: date, zone: ZoneInfo) -> list[Interval]:
    """The real intervals of the openings that start on local `day`, cut at midnight when the next
    date has an exception of its own. Empty intervals (skipped by a clock change) are left out."""
    cut = _midnight(day + timedelta(days=1)) if calendar.exception_on(day + timedelta(days=1)) else None
    intervals = []
    for span in calendar.spans_on(day):
        start = _midnight(day) + timedelta(minutes=span.start_minute)
        end = _midnight(day) + timedelta(minutes=span.end_minute)
        if cut is not None:
            end = min(end, cut)
        interval = Interval(first_instant(start, zone), last_instant(end, zone))
        if interval.start < interval.end:
            intervals.append(interval)
    return sorted(intervals)


def _covers(intervals: list[Interval], start: datetime, end: datetime) -> bool:
    reached = start
    for interval in sorted(intervals):
        if interval.start > reached:
            return False
        reached = max(reached, interval.end)
        if reached >= end:
            return True
    return reached >= end


def next_opening(calendar: Calendar, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The first instant after `now` at which an opening starts, or None within SEARCH_DAYS."""
    if not calendar.hours.ever_open:
        return None
    today = local_wall(now, zone).date()
    for offset in range(-1, SEARCH_DAYS):
        starts = [i.start for i in openings_from(calendar, today + timedelta(days=offset), zone) if i.start > now]
        if starts:
            return min(starts)
    return None


def office_status(hours: OfficeHours, zone: ZoneInfo, now: datetime) -> OfficeStatus:
    """The office's status at `now` (an aware instant)."""
    calendar = Calendar(hours)
    local = now.astimezone(zone)
    today = local.date()
    day = Interval(first_instant(_midnight(today), zone), first_instant(_midnight(today + timedelta(days=1)), zone))
    intervals = [*openings_from(calendar, today - timedelta(days=1), zone), *openings_from(calendar, today, zone)]
    todays = [
        Interval(max(i.start, day.start), min(i.end, day.end))
        for i in intervals
        if i.start < day.end and i.end > day.start
    ]
    open_now = any(i.start <= now < i.end for i in intervals)
    if _covers(todays, day.start, day.end):
        status = OfficeStatusKind.open_24h
    elif open_now:
        status = OfficeStatusKind.open
    elif todays:
        status = OfficeStatusKind.closed
    else:
        status = OfficeStatusKind.closed_today
    upcoming = None if open_now else next_opening(calendar, zone, now)
    exception = calendar.exception_on(today)
    return OfficeStatus(
        status=status,
        text=OFFICE_STATUS_TEXT[status],
        local_time=local,
        timezone=zone.key,
        next_opening=upcoming.astimezone(zone) if upcoming else None,
        holiday=exception.name if exception else None,
    )
