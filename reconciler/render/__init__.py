"""Plan renderers, by output name. Each takes a plan and a stream and only writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from reconciler.engine.plan import Plan
from reconciler.listeners.model import CheckReport
from reconciler.render import listeners as check_views
from reconciler.render.json_plan import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text

Renderer = Callable[[Plan, TextIO], None]


def renderer(
    name: str,
    *,
    color: bool = False,
    full_plan: str | None = None,
    listeners: CheckReport | None = None,
) -> Renderer:
    """The renderer for ``--output NAME``; colour applies to text only, ``full_plan`` (the
    saved plan's file name, for a shortened document's pointer) to Markdown only;
    ``listeners`` (``plan --check-listeners``) adds the listener check to any format."""
    if name == "text":

        def text(plan: Plan, out: TextIO) -> None:
            render_text(plan, out, color=color)
            if listeners is not None:
                out.write("\nListener check:\n\n")
                check_views.render_text(listeners, out)

        return text
    if name == "markdown":
        return lambda plan, out: render_markdown(
            plan, out, full_plan=full_plan, listeners=listeners
        )
    if name == "json":
        return lambda plan, out: render_json(plan, out, listeners=listeners)
    return RENDERERS[name]


RENDERERS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}
