"""The spawner's side of the spawn page: it builds a :class:`~.context.FormContext` per request
and hands it to the form (:mod:`.form`), which never sees the spawner.

A mixin of :class:`~.spawner.MOSlurmSpawner`. It reads what only the spawner can read (its
traits, the request handler JupyterHub sets on it, the hub's URL and template folders) and
relies on the spawner's hooks for the rest: ``cluster_snapshot``, ``start_estimator``
(:mod:`.slurm_access`), ``limits_from``, ``options_policy`` (:mod:`.spawner`) and
``script_settings`` and ``session_facts`` (:mod:`.lifecycle`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchspawner import SlurmSpawner
from traitlets import Integer, default

from . import form
from .batch_script import ScriptSettings
from .context import FormContext
from .log_safe import log_safe
from .options import FIELD_NAMES
from .rejections import REJECTED
from .session_report import user_server_facts
from .sessions import ServerFacts


async def _render_options_form(spawner: SpawnPageHooks) -> str:
    """The spawner's ``options_form``: JupyterHub calls it with the spawner to render the page."""
    return await spawner.render_options_form()


def _live_xsrf_token(handler: Any) -> str:
    """The token of the request being served, or "" (JupyterHub re-renders a rejected form
    through a spawner whose ``handler`` may be another, finished request, or None)."""
    if handler is None or getattr(handler, "_finished", True):
        return ""
    try:
        token = handler.xsrf_token
    except Exception:  # no token is better than no page; htmx GETs do not need one
        return ""
    return token.decode("ascii") if isinstance(token, bytes) else str(token)


class SpawnPageHooks(SlurmSpawner):
    """The spawn page's form, and its htmx fragments, for this spawner's user."""

    availability_refresh_interval = Integer(
        30,
        help="""
        Seconds between two refreshes of the spawn page's availability table in the browser.
        They read the hub's shared view of the cluster, never Slurm itself.
        """,
    ).tag(config=True)

    session_warning_minutes = Integer(
        15,
        help="""
        Below this many minutes left before Slurm ends a server's job at its time limit, "Your
        sessions" on the spawn page and the admins' jobs page show the time left as a warning,
        so users save their work in time. 0 turns the warning off.
        """,
    ).tag(config=True)

    async def form_context(
        self,
        *,
        server_name: str | None = None,
        xsrf_token: str = "",
        hub_prefix: str = "",
        with_estimates: bool = False,
        with_sessions: bool = False,
    ) -> FormContext:
        """Everything the form needs for one request, read once: one snapshot, one merge.

        ``with_estimates`` adds what a start estimate needs (the admin's side of the batch
        script, the shared estimator): only the estimate fragment asks for it.
        ``with_sessions`` adds the user's servers (the whole page and the sessions fragment).
        """
        snapshot = await self.cluster_snapshot()
        access = await self.user_access()
        settings = self._estimate_settings() if with_estimates else None
        return FormContext(
            user_name=self.user.name,
            server_name=self.name or "" if server_name is None else server_name,
            snapshot=snapshot,
            limits=self.limits_from(snapshot, access),
            policy=self.options_policy(snapshot, access),
            script_settings=settings,
            estimator=self.start_estimator() if settings is not None else None,
            hub_prefix=hub_prefix or self._hub_prefix(),
            xsrf_token=xsrf_token,
            refresh_seconds=int(self.availability_refresh_interval),
            template_paths=self._admin_template_paths(),
            sessions=self.user_session_facts() if with_sessions else (),
            session_warning_minutes=max(int(self.session_warning_minutes), 0),
        )

    def user_session_facts(self) -> tuple[ServerFacts, ...]:
        """The user's servers worth a row (see :func:`.session_report.user_server_facts`)."""
        return tuple(user_server_facts(self.user))

    def _estimate_settings(self) -> ScriptSettings | None:
        # Only the admin's req_* values matter to an estimate, not the job's environment.
        try:
            return self.script_settings({})
        except Exception as error:  # e.g. req_homedir of a user with no Unix account
            self.log.warning(
                "No start estimates for %s: %s", log_safe(self.user.name), log_safe(repr(error))
            )
            return None

    @default("options_form")
    def _default_options_form(self):
        return _render_options_form

    async def render_options_form(self) -> str:
        """The whole form for the spawn page (see :func:`.form.render_form` for what it shows)."""
        handler = getattr(self, "handler", None)
        rejection = REJECTED.take(self.user.name, self.name or "")
        server_name = rejection[0] if rejection is not None else None
        ctx = await self.form_context(
            server_name=server_name, xsrf_token=_live_xsrf_token(handler), with_sessions=True
        )
        return form.render_form(
            ctx,
            link=getattr(handler, "moss_link_to_confirm", None),
            rejection=rejection[1] if rejection is not None else None,
            saved=getattr(getattr(self, "orm_spawner", None), "user_options", None),
        )

    async def render_form_fragment(
        self,
        fragment: str,
        server_name: str,
        query: Mapping[str, Any],
        *,
        xsrf_token: str = "",
        hub_prefix: str = "",
    ) -> str:
        """One htmx fragment of the form of ``server_name`` (see :func:`.form.render_fragment`)."""
        ctx = await self.form_context(
            server_name=server_name,
            xsrf_token=xsrf_token,
            hub_prefix=hub_prefix,
            with_estimates=fragment == "estimate",
            with_sessions=fragment == "sessions",
        )
        return await form.render_fragment(ctx, fragment, query)

    def remember_rejected_submission(
        self, values: Mapping[str, object], errors: Mapping[str, str]
    ) -> None:
        """Keep a rejected submission so the re-rendered form shows its values and messages."""
        shown = form.shown_values(values)
        REJECTED.remember(self.user.name, self.name or "", shown, errors, FIELD_NAMES)

    def _hub_prefix(self) -> str:
        base = getattr(getattr(self, "hub", None), "base_url", None)
        return base if isinstance(base, str) and base else "/hub/"

    def _admin_template_paths(self) -> tuple[str, ...]:
        section = self.config.get("JupyterHub", {})
        paths = section.get("template_paths", []) if hasattr(section, "get") else []
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, (list, tuple)):
            return ()
        return tuple(p for p in paths if isinstance(p, str))
