"""The spawn page's form: plain functions from a :class:`~jupyterhub_moss.context.FormContext`
and the values to show, to HTML.

Data flows one way: context (one snapshot, the limits merged from it, the policy) → the values
to show (a held link, a rejected submission, saved options, or what the browser sent, each
cleaned against those limits: :mod:`.values`) → :class:`~.views.FormView` (:mod:`.build`) →
HTML (:mod:`.templates`). The form never imports the spawner: the spawner builds the context
and calls :func:`render_form` (its ``options_form``) and :func:`render_fragment` (the htmx
fragment handlers).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..context import FormContext, LinkToConfirm
from ..options import FIELD_NAMES, salvage_saved_options
from ..rejections import Rejection
from ..request_values import flatten_form
from .build import build_view
from .estimate import start_estimate
from .render_cache import RENDERS, context_key, values_key
from .templates import TEMPLATE_NAME, render_block, render_page, template_environment
from .values import (
    ADVANCED,
    ADVANCED_ONLY_FIELDS,
    FORM_ONLY_KEYS,
    SIMPLE,
    TAB_LABELS,
    carry_over,
    checked_link,
    infer_tab,
    shown_values,
)
from .views import EstimateView, FormTarget, FormView

__all__ = [
    "FORM_ONLY_KEYS",
    "FRAGMENT_BLOCKS",
    "FormTarget",
    "FormView",
    "render_form",
    "render_fragment",
    "shown_values",
]

#: Fragment name in the URL → the template block it renders.
FRAGMENT_BLOCKS = {
    "body": "form_body",
    "partition": "partition_controls",
    "estimate": "estimate",
    "availability": "availability",
    "sessions": "sessions",
}
#: Fragments rendered afresh every time: they show the clock (time left) or Slurm's answer.
UNCACHED_FRAGMENTS = frozenset({"estimate", "sessions"})


def _first_view(
    ctx: FormContext,
    link: LinkToConfirm | None,
    rejection: Rejection | None,
    saved: Mapping[str, Any] | None,
    now: datetime,
) -> FormView:
    """The page as first shown: a held link, checked, with its messages; else a rejected
    submission as typed, with its messages; else the saved options cleaned against today's
    limits; else the defaults."""
    if link is not None:
        values, errors = checked_link(link.options, ctx.limits, ctx.policy)
        tab = ADVANCED if any(values.get(k) for k in ADVANCED_ONLY_FIELDS) else SIMPLE
        return build_view(
            ctx, tab=tab, values=values, errors=errors, now=now, link_came_from=link.came_from
        )
    if rejection is not None:
        # The Advanced tab always posts its memory field; the Simple tab has none.
        tab = ADVANCED if any(k in rejection.values for k in ADVANCED_ONLY_FIELDS) else SIMPLE
        return build_view(ctx, tab=tab, values=rejection.values, errors=rejection.errors, now=now)
    cleaned = salvage_saved_options(saved, ctx.limits, ctx.policy)
    tab = infer_tab(cleaned, ctx.limits)
    values = carry_over(cleaned, ctx.limits, ctx.policy, tab)
    return build_view(ctx, tab=tab, values=values, now=now)


def render_form(
    ctx: FormContext,
    *,
    link: LinkToConfirm | None = None,
    rejection: Rejection | None = None,
    saved: Mapping[str, Any] | None = None,
) -> str:
    """The whole form, as JupyterHub's spawn page inserts it.

    A page shown again with the same inputs (see :mod:`.render_cache`) is not rendered again.
    A held link or a rejected submission is shown once, so it is never cached.
    """
    if not ctx.limits:
        return nothing_to_offer(ctx)
    env = template_environment(ctx.template_paths)
    now = datetime.now(timezone.utc)
    key = None
    # A page listing sessions shows their time left, to the second: never the same twice.
    if link is None and rejection is None and not ctx.sessions:
        saved_text = values_key(saved)
        if saved_text is not None:
            key = ("page", saved_text, *context_key(ctx, env.get_template(TEMPLATE_NAME), now))
    return RENDERS.get_or_render(
        key, lambda: render_page(env, _first_view(ctx, link, rejection, saved, now))
    )


async def render_fragment(ctx: FormContext, fragment: str, query: Mapping[str, Any]) -> str:
    """One fragment (a key of :data:`FRAGMENT_BLOCKS`) for what the browser sent in ``query``.

    Lenient by design: unknown partitions fall back to the tab's default, values the partition
    cannot take are reset; nothing here raises for what a browser sends.
    """
    if not ctx.limits:
        return nothing_to_offer(ctx)
    raw = flatten_form(query)
    tab = raw.get("moss_tab") if raw.get("moss_tab") in TAB_LABELS else SIMPLE
    sent = {k: v for k, v in raw.items() if k in FIELD_NAMES}
    now = datetime.now(timezone.utc)
    env = template_environment(ctx.template_paths)
    if fragment == "estimate":  # its own cache is the estimator's, per job asked about
        estimate = await start_estimate(ctx, sent, now)
        return render_block(
            env, FRAGMENT_BLOCKS[fragment], _fragment_view(ctx, tab, sent, now, estimate)
        )
    sent_text = values_key(sent)
    key = None
    if sent_text is not None and fragment not in UNCACHED_FRAGMENTS:
        template = env.get_template(TEMPLATE_NAME)
        key = ("fragment", fragment, tab, sent_text, *context_key(ctx, template, now))
    return RENDERS.get_or_render(
        key,
        lambda: render_block(env, FRAGMENT_BLOCKS[fragment], _fragment_view(ctx, tab, sent, now)),
    )


def _fragment_view(
    ctx: FormContext,
    tab: str,
    sent: Mapping[str, Any],
    now: datetime,
    estimate: EstimateView | None = None,
) -> FormView:
    values = carry_over(sent, ctx.limits, ctx.policy, tab)
    return build_view(ctx, tab=tab, values=values, estimate=estimate, now=now)


def nothing_to_offer(ctx: FormContext) -> str:
    """What a user may see instead of the form when they may use none of the hub's partitions
    (the admin's ``groups``, Slurm's AllowGroups, AllowAccounts...): why, partition by
    partition."""
    reasons = "".join(
        f"<li>{html.escape(name)}: {html.escape(reason)}</li>"
        for name, reason in ctx.policy.refused_partitions
    )
    return (
        '<div id="moss-form" class="moss-form"><div class="alert alert-warning" role="alert">'
        "<p>None of the partitions this hub offers is open to you:</p>"
        f"<ul>{reasons}</ul><p>Ask your HPC support for access.</p></div></div>"
    )
