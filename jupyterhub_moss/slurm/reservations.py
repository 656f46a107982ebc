"""Slurm reservations: read from ``scontrol show reservation -o`` (:data:`RESERVATION_ARGS`,
:func:`parse_reservations`), and those one user may use (:func:`usable_reservations`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import datetime, timezone

from ..log_safe import log_safe
from .models import Reservation
from .scontrol import parse_scontrol_fields
from .times import parse_slurm_time

__all__ = ["RESERVATION_ARGS", "parse_reservations", "usable_reservations"]

log = logging.getLogger(__name__)

#: ``scontrol`` arguments for :func:`parse_reservations`.
RESERVATION_ARGS = ("show", "reservation", "-o")


def _name_list(text: str) -> tuple[str, ...]:
    if text.strip() in ("", "(null)"):
        return ()
    return tuple(name.strip() for name in text.split(",") if name.strip())


def parse_reservations(text: str) -> list[Reservation]:
    """Reservations from ``scontrol show reservation -o`` (one line each).

    "No reservations in the system" gives ``[]``; unreadable lines are logged and skipped.
    """
    reservations = []
    for line in text.splitlines():
        if not line.strip() or line.strip().startswith("No reservations"):
            continue
        fields = parse_scontrol_fields(line)
        try:
            reservations.append(_reservation(fields))
        except (KeyError, ValueError) as error:
            log.warning("skipping reservation line %s: %s", log_safe(repr(line)), log_safe(error))
    return reservations


def _reservation(fields: dict[str, str]) -> Reservation:
    partition = fields.get("PartitionName", "")
    return Reservation(
        name=fields["ReservationName"],
        state=fields.get("State", "").upper(),
        start=parse_slurm_time(fields.get("StartTime", "")),
        end=parse_slurm_time(fields.get("EndTime", "")),
        users=_name_list(fields.get("Users", "")),
        accounts=_name_list(fields.get("Accounts", "")),
        partition=None if partition in ("", "(null)") else partition,
        nodes="" if fields.get("Nodes", "") == "(null)" else fields.get("Nodes", ""),
        flags=tuple(flag.upper() for flag in _name_list(fields.get("Flags", ""))),
    )


def _listed(name: str, entries: Collection[str]) -> str | None:
    """ "allowed" if listed, "excluded" if listed with "-", "not listed" if only others are
    excluded, None if there is no list or it names others only."""
    if not entries:
        return None
    if name in entries:
        return "allowed"
    if f"-{name}" in entries:
        return "excluded"
    if all(entry.startswith("-") for entry in entries):
        return "not listed"
    return None


def usable_reservations(
    reservations: Iterable[Reservation],
    username: str,
    now: datetime,
    accounts: Collection[str] | None = None,
) -> list[Reservation]:
    """Reservations ``username`` may use now or later, in start order.

    Kept: not ended (active or upcoming), no ``MAINT`` flag, and the user allowed: listed in
    ``Users``, or the ``Users`` list only excludes others (``-bob``). A reservation that grants
    access by ``Accounts`` only is kept when the user's ``accounts`` are unknown (``None``, the
    default: finding them costs an accounting query per user); Slurm itself refuses a job in
    a reservation the user may not use, and that error reaches the user. With ``accounts``
    given, the same allow/exclude rules apply to them.
    """
    kept = []
    for reservation in reservations:
        if "MAINT" in reservation.flags:
            continue
        if reservation.end is not None and reservation.end <= now:
            continue
        if _user_may_use(reservation, username, accounts):
            kept.append(reservation)
    far_past = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(kept, key=lambda r: (r.start or far_past, r.name))


def _user_may_use(
    reservation: Reservation, username: str, accounts: Collection[str] | None
) -> bool:
    by_user = _listed(username, reservation.users)
    if by_user == "excluded":
        return False
    if by_user in ("allowed", "not listed"):
        return True
    if reservation.users:  # a list of other users, and accounts cannot add to it
        return False
    if not reservation.accounts:
        return True  # no user or account list: e.g. a group-based reservation; let Slurm judge
    if accounts is None:
        return True  # unknown accounts: show it, and let sbatch judge
    verdicts = {_listed(account, reservation.accounts) for account in accounts}
    if "excluded" in verdicts:
        return False
    return bool(verdicts & {"allowed", "not listed"})
