"""Schedule timetables (``runq.timetable``): cron in a time zone through ``cronsim`` and
``zoneinfo``, daylight-saving transitions included, and fixed intervals. Pure computation:
no backend is involved, so these tests are not parametrized over the backends."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from runq.exceptions import ConfigError
from runq.timetable import Timetable

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _ticks(tt: Timetable, start: datetime, n: int) -> list[datetime]:
    out, t = [], start.timestamp()
    for _ in range(n):
        t = tt.next_after(t)
        out.append(datetime.fromtimestamp(t, ZoneInfo(tt.timezone)))
    return out


def test_daily_cron_across_spring_forward() -> None:
    # 2026-03-29 02:30 does not exist in Berlin: that night's run happens once, at 03:00
    tt = Timetable.build("30 2 * * *", None, "Europe/Berlin", anchor=0)
    ticks = _ticks(tt, datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN), 3)
    assert [(t.day, t.hour, t.minute) for t in ticks] == [(29, 3, 0), (30, 2, 30), (31, 2, 30)]
    assert ticks[1].utcoffset() == timedelta(hours=2)  # summer time after the change


def test_daily_cron_across_fall_back() -> None:
    # 2026-10-25 02:30 happens twice in Berlin: the run happens once
    tt = Timetable.build("30 2 * * *", None, "Europe/Berlin", anchor=0)
    ticks = _ticks(tt, datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN), 3)
    assert [(t.day, t.hour, t.minute) for t in ticks] == [(25, 2, 30), (26, 2, 30), (27, 2, 30)]
    gaps = [b.timestamp() - a.timestamp() for a, b in itertools.pairwise(ticks)]
    assert gaps == [25 * 3600, 24 * 3600]  # the first 02:30 (summer time); that day has 25 h


def test_hourly_cron_counts_real_hours_across_the_change() -> None:
    tt = Timetable.build("0 * * * *", None, "America/New_York", anchor=0)
    ticks = _ticks(tt, datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK), 4)
    gaps = {b.timestamp() - a.timestamp() for a, b in itertools.pairwise(ticks)}
    assert gaps == {3600.0}  # an hourly job runs every real hour, never twice in one


def test_a_cron_tick_in_utc_and_in_a_zone() -> None:
    utc = Timetable.build("0 3 * * *", None, "UTC", anchor=0)
    t = utc.next_after(datetime(2026, 1, 1, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp())
    assert datetime.fromtimestamp(t, ZoneInfo("UTC")) == datetime(
        2026, 1, 2, 3, 0, tzinfo=ZoneInfo("UTC")
    )
    tokyo = Timetable.build("0 3 * * *", None, "Asia/Tokyo", anchor=0)
    assert tokyo.next_after(t) - t == pytest.approx(15 * 3600)  # 03:00 Tokyo = 18:00 UTC


def test_every_counts_from_the_anchor() -> None:
    tt = Timetable.build(None, timedelta(seconds=10), None, anchor=1000.0)
    assert tt.next_after(990) == 1000.0
    assert tt.next_after(1000) == 1010.0
    assert tt.next_after(1009.9) == 1010.0
    assert tt.next_after(1055) == 1060.0  # missed ticks collapse into the next one


def test_bad_timetables_are_refused() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        Timetable.build(None, None, None, 0)
    with pytest.raises(ConfigError, match="exactly one"):
        Timetable.build("* * * * *", 5, None, 0)
    with pytest.raises(ConfigError, match="not valid"):
        Timetable.build("61 * * * *", None, None, 0)
    with pytest.raises(ConfigError, match="time zone"):
        Timetable.build("* * * * *", None, "Mars/Olympus", 0)
    with pytest.raises(ConfigError, match="every"):
        Timetable.build(None, -1, None, 0)
    roundtrip = Timetable.build("*/5 * * * *", None, "Europe/Berlin", 12.5)
    assert Timetable.from_json(roundtrip.to_json()) == roundtrip
