"""`environments.<env>.policy`: promotion policy per environment: freeze windows, environment order, approvers.

    environments:
      prod:
        namespace: models
        policy:
          after: staging        # only versions served in staging ...
          soak: 1h              # ... for at least an hour
          approvers: [maya, acme/ml-leads]   # a user, and the members of a team
          freeze:
            - {days: [fri, sat, sun], start: "16:00", end: "08:00", timezone: Europe/Berlin, reason: weekend}
            - {start: 2026-12-21T00:00:00Z, end: 2027-01-04T00:00:00Z, reason: holidays}

A window with ``days`` recurs every week: from ``start`` on each of those days (local time in
``timezone``) to ``end`` (the next day's when it is not later than ``start``). One without is a
date range: ``start`` and ``end`` are times with their offset. While one holds, promotions into the
environment are refused (``mlops_ci.policy``), and so while a ``FREEZE`` file is in its folder of
the GitOps repository (``mlops_ci.serving.freeze``).

``approvers`` name who may ship into the environment: only their ``/mlops-ci promote|rollback``
comments are accepted (``mlops_ci.slash``), and a promotion proposed as a pull request completes
(its alias moves) only once an approver approved that pull request (``mlops_ci.stages.promotion``).
A team is asked about only when the person is not listed by name.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from mlops_ci.config.base import Name, Strict
from mlops_ci.config.monitoring import Duration

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# an approver: a login (letters, digits and single hyphens, at most 39), or a team as GitHub writes it
# (org/team-slug: the slug of "ML Leads" is ml-leads); Approver's pattern is a Rust regex: no lookaround
_LOGIN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
_TEAM_SLUG = re.compile(r"[a-z0-9_]+(?:-[a-z0-9_]+)*")
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _approver(value: object) -> object:
    """An approver entry checked whole, so that a malformed one is refused with both accepted forms."""
    if not isinstance(value, str):
        return value  # pydantic's own "not a string" error follows
    login, slash, slug = value.partition("/")
    ok = bool(_LOGIN.fullmatch(login)) and len(login) <= 39 and (
        not slash or (bool(_TEAM_SLUG.fullmatch(slug)) and len(slug) <= 100))
    if not ok:
        raise ValueError(f"{value!r} is neither a GitHub login (e.g. alice) nor a team written org/team-slug "
                         "(e.g. acme/ml-leads: the slug is the team's name in lowercase, spaces as -)")
    return value


# the pattern is what editors see (the JSON Schema); the validator before it words the refusal
Approver = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?:/[a-z0-9_]+(?:-[a-z0-9_]+)*)?$",
                                            max_length=140), BeforeValidator(_approver)]


def _clock(text: str, field: str = "time") -> time:
    try:
        hours, minutes = text.split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError(text)
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{field} {text!r} is not a time of day HH:MM") from None


def _instant(text: str, field: str = "time") -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field} {text!r} is not a date and time (e.g. 2026-12-21T00:00:00Z)") from None
    if when.tzinfo is None:
        raise ValueError(f"{field} {text!r} has no offset: write Z or +HH:MM")
    return when


def _as_text(value):
    """A YAML timestamp (an unquoted 2026-12-21T00:00:00Z) as the text it was written as."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        raise ValueError(f"{value.isoformat()} has no time: write {value.isoformat()}T00:00:00Z")  # noqa: TRY004 (pydantic reports ValueError)
    return value


class FreezeWindow(Strict):
    days: list[Day] | None = Field(default=None, min_length=1,
                                   description="weekdays it recurs on (mon ... sun); omitted: a date range")
    start: str = Field(description="HH:MM with days, else a date and time with its offset")
    end: str = Field(description="HH:MM with days (not later than start: the next day's), else a date and time")
    timezone: str = Field(default="UTC", description="the IANA zone of a weekly window's times")
    reason: str | None = Field(default=None, max_length=200, description="shown when it refuses a promotion")

    _texts = field_validator("start", "end", mode="before")(_as_text)

    @model_validator(mode="after")
    def _check(self) -> FreezeWindow:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        if self.days is not None:
            _clock(self.start, "start"), _clock(self.end, "end")
        elif _instant(self.end, "end") <= _instant(self.start, "start"):
            raise ValueError(f"the window must end after it starts (start {self.start}, end {self.end})")
        return self

    def holds_until(self, now: datetime) -> datetime | None:
        """When the window holding ``now`` (aware) ends, or None when it does not hold; a window of
        the next listed day that starts as this one ends (fri, sat, sun 00:00-00:00) runs on."""
        end = self._holds_until(now)
        for _ in range(7):
            later = self._holds_until(end) if end is not None else None
            if later is None or later <= end:
                break
            end = later
        return end

    def _holds_until(self, now: datetime) -> datetime | None:
        from zoneinfo import ZoneInfo

        if self.days is None:
            start, end = _instant(self.start), _instant(self.end)
            return end if start <= now < end else None
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        start, end = _clock(self.start), _clock(self.end)
        for day in (local.date(), local.date() - timedelta(days=1)):  # a window from yesterday may hold
            if DAYS[day.weekday()] not in self.days:
                continue
            opens = datetime.combine(day, start, tzinfo=zone)
            closes = datetime.combine(day + timedelta(days=1) if end <= start else day, end, tzinfo=zone)
            if opens <= local < closes:
                return closes
        return None

    def describe(self) -> str:
        when = (f"{', '.join(self.days)} {self.start}-{self.end} {self.timezone}" if self.days is not None
                else f"{self.start} to {self.end}")
        return f"freeze window {when}" + (f" ({self.reason})" if self.reason else "")


class EnvironmentPolicy(Strict):
    freeze: list[FreezeWindow] = Field(default_factory=list, description="windows in which promotions into the "
                                       "environment are refused (--force --reason goes past, recorded)")
    after: Name | None = Field(default=None, description="the environment a version must have been served in "
                               "(for at least soak) before it is promoted here, e.g. staging for prod")
    approvers: list[Approver] = Field(default_factory=list, description="GitHub users (alice) and teams "
                                      "(org/team-slug, e.g. acme/ml-leads) whose `/mlops-ci promote|rollback <env>` is "
                                      "accepted and one of whom must approve a promotion proposed as a pull request "
                                      "(--via-pr) before its alias moves; none listed: any writer's, no review needed. "
                                      "Teams are read with MLOPS_CI_TEAMS_TOKEN (members: read on the org)")
    soak: Duration | None = Field(default=None, description="how long the version must have been served in `after` "
                                  "(30m, 1h, 2d: from the commit that pinned it there to the next; none: served "
                                  "there at all)")

    @model_validator(mode="after")
    def _soak_needs_after(self) -> EnvironmentPolicy:
        if self.soak is not None and self.after is None:
            raise ValueError("soak needs after: the environment the version must have been served in")
        return self


__all__ = ["DAYS", "Approver", "EnvironmentPolicy", "FreezeWindow"]
