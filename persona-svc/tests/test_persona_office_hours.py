"""is_office_open: table tests for every edge, and properties over random schedules and instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.contracts.persona import OFFICE_STATUS_TEXT, OfficeStatusKind

from persona_svc.model import Holiday, OfficeHours, Span, SpecialHours, Weekday
from persona_svc.office_hours import office_status

OPEN = OfficeStatusKind.open
CLOSED = OfficeStatusKind.closed
CLOSED_TODAY = OfficeStatusKind.closed_today
OPEN_24H = OfficeStatusKind.open_24h
WORKDAYS = [Weekday.monday, Weekday.tuesday, Weekday.wednesday, Weekday.thursday, Weekday.friday]


def hours(weekly: dict[Weekday, list[tuple[str, str]]] | None = None, **exceptions) -> OfficeHours:
    return OfficeHours(
        weekly={day: [Span(start=s, end=e) for s, e in spans] for day, spans in (weekly or {}).items()},
        **exceptions,
    )


NINE_TO_FIVE = hours({day: [("09:00", "17:00")] for day in WORKDAYS})
FRIDAY_NIGHT = hours({Weekday.friday: [("22:00", "02:00")]})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


# fmt: off
TABLE = [
    # 2026 US change days: 8 March (02:00 EST -> 03:00 EDT) and 1 November (02:00 EDT -> 01:00 EST).
    ("US before spring change", NINE_TO_FIVE, "America/New_York", "2026-03-06 14:30", OPEN, None),
    ("US after spring change", NINE_TO_FIVE, "America/New_York", "2026-03-09 13:30", OPEN, None),
    ("US early after spring change", NINE_TO_FIVE, "America/New_York", "2026-03-09 12:30", CLOSED, "2026-03-09T09:00:00-04:00"),
    ("US weekend over spring change", NINE_TO_FIVE, "America/New_York", "2026-03-07 15:00", CLOSED_TODAY, "2026-03-09T09:00:00-04:00"),
    ("US before autumn change", NINE_TO_FIVE, "America/New_York", "2026-10-30 13:30", OPEN, None),
    ("US after autumn change", NINE_TO_FIVE, "America/New_York", "2026-11-02 14:30", OPEN, None),
    ("US early after autumn change", NINE_TO_FIVE, "America/New_York", "2026-11-02 13:30", CLOSED, "2026-11-02T09:00:00-05:00"),
    # No DST: Arizona keeps UTC-7 while New York moves.
    ("Phoenix same instant as US open", NINE_TO_FIVE, "America/Phoenix", "2026-03-09 13:30", CLOSED, "2026-03-09T09:00:00-07:00"),
    ("Phoenix open", NINE_TO_FIVE, "America/Phoenix", "2026-03-09 16:30", OPEN, None),
    ("Phoenix in November", NINE_TO_FIVE, "America/Phoenix", "2026-11-02 16:30", OPEN, None),
    ("Kolkata half-hour offset", NINE_TO_FIVE, "Asia/Kolkata", "2026-03-09 03:29", CLOSED, "2026-03-09T09:00:00+05:30"),
    ("Kolkata opens at 03:30 UTC", NINE_TO_FIVE, "Asia/Kolkata", "2026-03-09 03:30", OPEN, None),
    # 2026 EU change days: 29 March and 25 October, at 01:00 UTC.
    ("EU before spring change", NINE_TO_FIVE, "Europe/Berlin", "2026-03-27 08:30", OPEN, None),
    ("EU after spring change", NINE_TO_FIVE, "Europe/Berlin", "2026-03-30 07:30", OPEN, None),
    ("EU early after spring change", NINE_TO_FIVE, "Europe/Berlin", "2026-03-30 06:30", CLOSED, "2026-03-30T09:00:00+02:00"),
    ("EU change day itself", NINE_TO_FIVE, "Europe/Berlin", "2026-03-29 10:00", CLOSED_TODAY, "2026-03-30T09:00:00+02:00"),
    ("EU before autumn change", NINE_TO_FIVE, "Europe/Berlin", "2026-10-23 07:30", OPEN, None),
    ("EU after autumn change", NINE_TO_FIVE, "Europe/Berlin", "2026-10-26 08:30", OPEN, None),
    ("EU autumn, still closed at 08:30 CET", NINE_TO_FIVE, "Europe/Berlin", "2026-10-26 07:30", CLOSED, "2026-10-26T09:00:00+01:00"),
    # Openings on the change days themselves.
    ("US span over the skipped hour, before", hours({Weekday.sunday: [("01:00", "04:00")]}), "America/New_York", "2026-03-08 06:59", OPEN, None),
    ("US span over the skipped hour, after", hours({Weekday.sunday: [("01:00", "04:00")]}), "America/New_York", "2026-03-08 07:00", OPEN, None),
    ("US span over the skipped hour, end", hours({Weekday.sunday: [("01:00", "04:00")]}), "America/New_York", "2026-03-08 08:00", CLOSED, "2026-03-15T01:00:00-04:00"),
    ("US span inside the skipped hour never opens", hours({Weekday.sunday: [("02:00", "02:30")]}), "America/New_York", "2026-03-08 12:00", CLOSED_TODAY, "2026-03-15T02:00:00-04:00"),
    ("US span starting in the skipped hour opens when clocks jump", hours({Weekday.sunday: [("02:30", "05:00")]}), "America/New_York", "2026-03-08 06:00", CLOSED, "2026-03-08T03:00:00-04:00"),
    ("US span ending in the repeated hour, first pass", hours({Weekday.sunday: [("00:00", "01:30")]}), "America/New_York", "2026-11-01 05:45", OPEN, None),
    ("US span ending in the repeated hour, second pass", hours({Weekday.sunday: [("00:00", "01:30")]}), "America/New_York", "2026-11-01 06:15", OPEN, None),
    ("US span ending in the repeated hour, after", hours({Weekday.sunday: [("00:00", "01:30")]}), "America/New_York", "2026-11-01 06:31", CLOSED, "2026-11-08T00:00:00-05:00"),
    ("US 23-hour day is open 24 hours", hours({Weekday.sunday: [("00:00", "24:00")]}), "America/New_York", "2026-03-08 12:00", OPEN_24H, None),
    ("US 25-hour day, first 01:30", hours({Weekday.sunday: [("00:00", "24:00")]}), "America/New_York", "2026-11-01 05:30", OPEN_24H, None),
    ("US 25-hour day, second 01:30", hours({Weekday.sunday: [("00:00", "24:00")]}), "America/New_York", "2026-11-01 06:30", OPEN_24H, None),
    ("EU span inside the skipped hour never opens", hours({Weekday.sunday: [("02:00", "03:00")]}), "Europe/Berlin", "2026-03-29 09:00", CLOSED_TODAY, "2026-04-05T02:00:00+02:00"),
    ("EU 25-hour day is open 24 hours", hours({Weekday.sunday: [("00:00", "24:00")]}), "Europe/Berlin", "2026-10-25 00:30", OPEN_24H, None),
    # Spans across midnight.
    ("Friday 22-02 is open Saturday 01:00", FRIDAY_NIGHT, "America/New_York", "2026-03-14 05:00", OPEN, None),
    ("Friday 22-02 is open Friday 23:00", FRIDAY_NIGHT, "America/New_York", "2026-03-14 03:00", OPEN, None),
    ("Saturday 03:00 after the night: it opened today", FRIDAY_NIGHT, "America/New_York", "2026-03-14 07:00", CLOSED, "2026-03-20T22:00:00-04:00"),
    ("Friday 21:00 before the night", FRIDAY_NIGHT, "America/New_York", "2026-03-14 01:00", CLOSED, "2026-03-13T22:00:00-04:00"),
    ("Sunday: nothing today", FRIDAY_NIGHT, "America/New_York", "2026-03-15 16:00", CLOSED_TODAY, "2026-03-20T22:00:00-04:00"),
    ("Span ending at 24:00", hours({Weekday.monday: [("18:00", "24:00")]}), "UTC", "2026-03-09 23:59", OPEN, None),
    ("Span ending at 24:00 does not spill", hours({Weekday.monday: [("18:00", "24:00")]}), "UTC", "2026-03-10 00:00", CLOSED_TODAY, "2026-03-16T18:00:00+00:00"),
    # Whole days.
    ("Two halves make 24 hours", hours({Weekday.monday: [("00:00", "12:00"), ("12:00", "24:00")]}), "UTC", "2026-03-09 20:00", OPEN_24H, None),
    ("Overnight spill plus the rest of the day make 24 hours", hours({Weekday.sunday: [("18:00", "06:00")], Weekday.monday: [("06:00", "24:00")]}), "UTC", "2026-03-09 03:00", OPEN_24H, None),
    ("A gap of one minute is not 24 hours", hours({Weekday.monday: [("00:00", "12:00"), ("12:01", "24:00")]}), "UTC", "2026-03-09 20:00", OPEN, None),
    ("Inside the one-minute gap", hours({Weekday.monday: [("00:00", "12:00"), ("12:01", "24:00")]}), "UTC", "2026-03-09 12:00", CLOSED, "2026-03-09T12:01:00+00:00"),
    ("Never open", hours(), "UTC", "2026-03-09 12:00", CLOSED_TODAY, None),
]
# fmt: on


@pytest.mark.parametrize(
    ("schedule", "zone", "now", "status", "next_opening"),
    [pytest.param(*row[1:], id=row[0]) for row in TABLE],
)
def test_office_status_table(schedule, zone: str, now: str, status: OfficeStatusKind, next_opening: str | None) -> None:
    result = office_status(schedule, ZoneInfo(zone), utc(now))
    assert (result.status, result.text) == (status, OFFICE_STATUS_TEXT[status])
    assert result.next_opening == (local(next_opening) if next_opening else None)
    if result.next_opening:
        assert result.next_opening.isoformat() == next_opening
    assert result.timezone == zone
    assert result.local_time.timestamp() == utc(now).timestamp() and result.local_time.tzinfo == ZoneInfo(zone)


XMAS = Holiday(date=date(2026, 12, 25), name="Christmas Day")


def test_holiday_closes_the_day_and_names_it() -> None:
    schedule = NINE_TO_FIVE.model_copy(update={"holidays": [XMAS]})
    result = office_status(schedule, ZoneInfo("America/New_York"), utc("2026-12-25 15:00"))
    assert result.status == CLOSED_TODAY and result.text == "Office is closed today"
    assert result.holiday == "Christmas Day"
    assert result.next_opening == local("2026-12-28T09:00:00-05:00")


def test_holiday_cuts_off_the_previous_nights_opening_at_midnight() -> None:
    schedule = FRIDAY_NIGHT.model_copy(update={"holidays": [Holiday(date=date(2026, 7, 4), name="Independence Day")]})
    zone = ZoneInfo("America/New_York")
    assert office_status(schedule, zone, utc("2026-07-04 03:30")).status == OPEN  # Friday 23:30
    saturday = office_status(schedule, zone, utc("2026-07-04 05:00"))  # Saturday 01:00
    assert (saturday.status, saturday.holiday) == (CLOSED_TODAY, "Independence Day")


def test_holiday_on_a_friday_also_drops_its_night() -> None:
    schedule = FRIDAY_NIGHT.model_copy(update={"holidays": [Holiday(date=date(2026, 7, 3), name="Observed")]})
    result = office_status(schedule, ZoneInfo("America/New_York"), utc("2026-07-04 05:00"))
    assert result.status == CLOSED_TODAY and result.holiday is None
    assert result.next_opening == local("2026-07-10T22:00:00-04:00")


def test_special_hours_replace_the_week_on_their_date() -> None:
    special = SpecialHours(date=date(2026, 12, 20), spans=[Span(start="10:00", end="12:00")], name="Holiday shopping")
    schedule = NINE_TO_FIVE.model_copy(update={"special_hours": [special]})
    zone = ZoneInfo("America/New_York")
    during = office_status(schedule, zone, utc("2026-12-20 16:00"))  # Sunday 11:00
    assert (during.status, during.holiday) == (OPEN, "Holiday shopping")
    after = office_status(schedule, zone, utc("2026-12-20 18:00"))
    assert after.status == CLOSED and after.next_opening == local("2026-12-21T09:00:00-05:00")


def test_special_hours_on_a_weekday_move_the_opening() -> None:
    special = SpecialHours(date=date(2026, 3, 9), spans=[Span(start="12:00", end="14:00")])
    schedule = NINE_TO_FIVE.model_copy(update={"special_hours": [special]})
    result = office_status(schedule, ZoneInfo("UTC"), utc("2026-03-09 10:00"))
    assert result.status == CLOSED and result.next_opening == local("2026-03-09T12:00:00+00:00")


def test_special_hours_without_spans_close_the_date() -> None:
    schedule = NINE_TO_FIVE.model_copy(
        update={"special_hours": [SpecialHours(date=date(2026, 3, 10), name="Staff training")]}
    )
    result = office_status(schedule, ZoneInfo("UTC"), utc("2026-03-10 10:00"))
    assert (result.status, result.holiday) == (CLOSED_TODAY, "Staff training")
    assert result.next_opening == local("2026-03-11T09:00:00+00:00")


def test_next_opening_after_a_long_closure() -> None:
    closure = [Holiday(date=date(2026, 12, 21) + timedelta(days=n), name="Winter break") for n in range(14)]
    schedule = NINE_TO_FIVE.model_copy(update={"holidays": closure})
    result = office_status(schedule, ZoneInfo("Europe/Berlin"), utc("2026-12-23 12:00"))
    assert result.status == CLOSED_TODAY and result.holiday == "Winter break"
    assert result.next_opening == local("2027-01-04T09:00:00+01:00")


def test_one_exception_per_date() -> None:
    with pytest.raises(ValueError, match="more than one"):
        hours(holidays=[XMAS], special_hours=[SpecialHours(date=XMAS.date)])


@pytest.mark.parametrize(
    ("start", "end"), [("09:00", "09:00"), ("24:00", "01:00"), ("9:00", "10:00"), ("10:60", "11:00")]
)
def test_bad_spans_are_refused(start: str, end: str) -> None:
    with pytest.raises(ValueError):
        Span(start=start, end=end)


# Properties over random schedules, zones and instants.

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "America/Phoenix",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "UTC",
    "America/Santiago",
]
OPEN_KINDS = {OPEN, OPEN_24H}


def _clock(minute: int) -> str:
    return "24:00" if minute == 1440 else f"{minute // 60:02d}:{minute % 60:02d}"


spans = (
    st.tuples(st.integers(0, 1439), st.integers(1, 1440))
    .filter(lambda se: se[0] != se[1] % 1440 or se[1] == 1440)
    .map(lambda se: Span(start=_clock(se[0]), end=_clock(se[1])))
)
dates_2026 = st.dates(date(2025, 12, 25), date(2027, 1, 10))


@st.composite
def schedules(draw) -> OfficeHours:
    weekly = draw(st.dictionaries(st.sampled_from(list(Weekday)), st.lists(spans, max_size=3)))
    exception_dates = draw(st.lists(dates_2026, max_size=6, unique=True))
    split = draw(st.integers(0, len(exception_dates)))
    holidays = [Holiday(date=d, name=f"Holiday {i}") for i, d in enumerate(exception_dates[:split])]
    special = [
        SpecialHours(date=d, spans=draw(st.lists(spans, max_size=2)), name=draw(st.none() | st.just("Special")))
        for d in exception_dates[split:]
    ]
    return OfficeHours(weekly=weekly, holidays=holidays, special_hours=special)


CLOCK_CHANGES_2026 = [
    utc(t)
    for t in (
        "2026-03-08 07:00",
        "2026-11-01 06:00",  # United States
        "2026-03-29 01:00",
        "2026-10-25 01:00",  # European Union
        "2026-04-04 15:00",
        "2026-10-03 15:30",  # Lord Howe Island (half-hour change)
        "2026-04-05 03:00",
        "2026-09-06 04:00",  # Chile (at local midnight)
    )
]
instants = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC)),
    st.builds(
        lambda change, seconds: change + timedelta(seconds=seconds),
        st.sampled_from(CLOCK_CHANGES_2026),
        st.integers(-36 * 3600, 36 * 3600),
    ),
)


def _spans_on(schedule: OfficeHours, day: date) -> list[Span]:
    exception = schedule.exception_on(day)
    if exception is None:
        return schedule.weekly.get(list(Weekday)[day.weekday()], [])
    return exception.spans if isinstance(exception, SpecialHours) else []


def _wall_open(schedule: OfficeHours, wall: datetime) -> bool:
    """The plain reading of a schedule on a day without a clock change: today's spans, plus the
    part of yesterday's overnight spans past midnight unless today has an exception of its own."""
    day = wall.date()
    minute = wall.hour * 60 + wall.minute + wall.second / 60 + wall.microsecond / 60e6
    if any(s.start_minute <= minute < s.end_minute for s in _spans_on(schedule, day)):
        return True
    if schedule.exception_on(day) is None:
        return any(minute < s.end_minute - 1440 for s in _spans_on(schedule, day - timedelta(days=1)))
    return False


def _no_clock_change_near(zone: ZoneInfo, day: date) -> bool:
    midnight = datetime.combine(day, datetime.min.time(), zone)
    return len({(midnight + timedelta(hours=h)).utcoffset() for h in range(-26, 50)}) == 1


@settings(max_examples=250, deadline=None)
@given(schedule=schedules(), zone=st.sampled_from(ZONES), now=instants, fraction=st.floats(0, 1, exclude_max=True))
def test_properties_of_any_schedule(schedule: OfficeHours, zone: str, now: datetime, fraction: float) -> None:
    tz = ZoneInfo(zone)
    result = office_status(schedule, tz, now)
    assert result.text == OFFICE_STATUS_TEXT[result.status]
    assert result.local_time.timestamp() == now.timestamp() and result.timezone == zone

    if result.status in OPEN_KINDS:
        assert result.next_opening is None
    elif result.next_opening is not None:
        assert result.next_opening > now
        assert office_status(schedule, tz, result.next_opening).status in OPEN_KINDS
        between = max(
            now, min(now + (result.next_opening - now) * fraction, result.next_opening - timedelta(microseconds=1))
        )
        assert office_status(schedule, tz, between).status not in OPEN_KINDS


@settings(max_examples=250, deadline=None)
@given(schedule=schedules(), zone=st.sampled_from(ZONES), now=instants, later=st.floats(0, 1, exclude_max=True))
def test_closed_today_and_24_hours_hold_for_the_whole_local_day(
    schedule: OfficeHours, zone: str, now: datetime, later: float
) -> None:
    tz = ZoneInfo(zone)
    day = now.astimezone(tz).date()
    start = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    other = start + (end - start) * later
    if other.astimezone(tz).date() != day:
        return
    first, second = office_status(schedule, tz, now), office_status(schedule, tz, other)
    assert (first.status == CLOSED_TODAY) == (second.status == CLOSED_TODAY)
    assert (first.status == OPEN_24H) == (second.status == OPEN_24H)
    assert first.holiday == second.holiday


@settings(max_examples=200, deadline=None)
@given(schedule=schedules(), zone=st.sampled_from(ZONES), now=instants)
def test_agrees_with_the_plain_reading_on_days_without_a_clock_change(
    schedule: OfficeHours, zone: str, now: datetime
) -> None:
    tz = ZoneInfo(zone)
    wall = now.astimezone(tz).replace(tzinfo=None)
    if not _no_clock_change_near(tz, wall.date()):
        return
    minutes = [datetime.combine(wall.date(), datetime.min.time()) + timedelta(minutes=m) for m in range(1440)]
    open_minutes = [_wall_open(schedule, m) for m in minutes]
    open_now = _wall_open(schedule, wall)
    if all(open_minutes):
        expected = OPEN_24H
    elif open_now:
        expected = OPEN
    elif any(open_minutes):
        expected = CLOSED
    else:
        expected = CLOSED_TODAY
    assert office_status(schedule, tz, now).status == expected
