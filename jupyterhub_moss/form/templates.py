"""Rendering ``moss_form.html``: the whole page, or one named block of it (an htmx fragment).

JupyterHub inserts the page's HTML into ``spawn.html`` with ``|safe``, so everything goes
through an autoescaping Jinja environment. Fragments render single blocks of the same template
from the same :class:`~.views.FormView`, so the page and its partial updates cannot drift apart.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2 import nodes

from .views import FormView

TEMPLATE_NAME = "moss_form.html"
PACKAGE_TEMPLATES = Path(__file__).parent.parent / "templates"
#: Admin templates reach ours under this prefix: ``{% extends "jupyterhub_moss/moss_form.html" %}``.
PACKAGE_TEMPLATE_PREFIX = "jupyterhub_moss"


@lru_cache(maxsize=8)
def template_environment(admin_paths: tuple[str, ...] = ()) -> jinja2.Environment:
    """Admin folders first (``c.JupyterHub.template_paths``), then the package's templates."""
    package = jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES))
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(list(admin_paths)),
            package,
            jinja2.PrefixLoader({PACKAGE_TEMPLATE_PREFIX: package}),
        ]
    )
    return jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _extended_name(env: jinja2.Environment, name: str) -> str | None:
    """The name template ``name`` extends, when it gives one literally."""
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return _extends_in_source(env, source)


@lru_cache(maxsize=32)
def _extends_in_source(env: jinja2.Environment, source: str) -> str | None:
    # Parsing the page's template takes ~20 ms: once per source text, not once per fragment
    # request (the source is still read each time, so an edited admin template is seen).
    extends = next(env.parse(source).find_all(nodes.Extends), None)
    if extends is None or not isinstance(extends.template, nodes.Const):
        return None
    return str(extends.template.value)


def render_block(
    env: jinja2.Environment, block: str, view: object, template_name: str = TEMPLATE_NAME
) -> str:
    """One named block of the form template (or of ``template_name``, another page of ours),
    with the context the full page uses.

    An admin template that extends ours may override some blocks: the others are looked up in
    the templates it extends, as Jinja itself does when rendering the whole page. Names are
    followed as written (a prefixed name loads a template whose own ``name`` is unprefixed).
    """
    template = env.get_template(template_name)
    context = template.new_context({"view": view})
    seen = {template_name}
    parent_name = _extended_name(env, template_name)
    while parent_name is not None and parent_name not in seen:
        seen.add(parent_name)
        for name, render in env.get_template(parent_name).blocks.items():
            context.blocks.setdefault(name, []).append(render)
        parent_name = _extended_name(env, parent_name)
    return "".join(context.blocks[block][0](context))


def render_page(env: jinja2.Environment, view: FormView) -> str:
    return env.get_template(TEMPLATE_NAME).render(view=view)
