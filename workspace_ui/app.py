"""The workspace page: who is signed in, the project picker, the Generate form and the results."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from core.accounts import Principal
from core.studio import Studio
from workspace_ui import gallery_panel
from workspace_ui.gallery_panel import GalleryPanel, build_gallery_panel
from workspace_ui.generate_panel import build_generate_panel, model_choices, wire_generate_panel
from workspace_ui.messages import shows_errors
from workspace_ui.session import principal_of

TITLE = "Creator Workspace"


def build_blocks(studio: Studio) -> gr.Blocks:
    """The whole workspace as a Gradio Blocks; every action goes through `studio`."""
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as blocks:
        with gr.Row(elem_id="topbar", equal_height=True):
            gr.HTML(f"<div class='brand'>◆ {TITLE}</div>", elem_id="brand")
            account = gr.HTML(elem_id="account")
        with gr.Row(elem_id="workspace"):
            with gr.Column(scale=2, min_width=360, elem_id="left"):
                with gr.Group(elem_id="project-card"):
                    project = gr.Dropdown(label="Project", choices=[], interactive=True, elem_id="project")
                    with gr.Row(equal_height=True):
                        new_name = gr.Textbox(
                            label="New project",
                            placeholder="Name, e.g. Spring campaign",
                            elem_id="new-project-name",
                            scale=2,
                        )
                        create = gr.Button("Create project", elem_id="create-project", scale=1, min_width=150)
                form = build_generate_panel()
            with gr.Column(scale=3, min_width=420, elem_id="right"):
                results = build_gallery_panel()

        wire_generate_panel(studio, form, project, results)
        _wire_projects(studio, project, new_name, create, results)

        @shows_errors
        def on_load(request: gr.Request) -> list[Any]:
            principal = principal_of(studio, request)
            projects = project_choices(studio, principal)
            return [account_html(principal), projects, model_choices(studio)]

        blocks.load(on_load, outputs=[account, project, form.model], show_progress="hidden")
    # Page loads and gallery refreshes of different people run side by side; generation is
    # limited separately (one at a time) on its own event.
    blocks.queue(default_concurrency_limit=8)
    return blocks


def account_html(principal: Principal) -> str:
    """The signed-in person, their organization and role, and the sign-out link."""
    return (
        "<div class='account'>"
        f"<span class='who'>{html.escape(principal.email)}</span>"
        f"<span class='org'>{html.escape(principal.org_name)} · {html.escape(str(principal.role))}"
        "</span><a class='signout' href='/logout'>Sign out</a></div>"
    )


def project_choices(studio: Studio, principal: Principal, selected: str | None = None) -> dict[str, Any]:
    """The project drop-down: newest first, keeping `selected` (or the newest) chosen."""
    projects = studio.projects(principal)
    ids = [p.id for p in projects]
    value = selected if selected in ids else (ids[0] if ids else None)
    return gr.update(choices=[(p.name, p.id) for p in projects], value=value)


def _wire_projects(
    studio: Studio,
    project: gr.Dropdown,
    new_name: gr.Textbox,
    create: gr.Button,
    results: GalleryPanel,
) -> None:
    @shows_errors
    def create_project(name: str, request: gr.Request) -> list[Any]:
        principal = principal_of(studio, request)
        created = studio.create_project(principal, name)
        return [project_choices(studio, principal, created.id), ""]

    create.click(create_project, inputs=new_name, outputs=[project, new_name])
    new_name.submit(create_project, inputs=new_name, outputs=[project, new_name])

    @shows_errors
    def show_project(project_id: str | None, request: gr.Request) -> list[Any]:
        principal = principal_of(studio, request)
        images, items = gallery_panel.gallery_contents(studio, principal, project_id)
        return [gr.update(value=images, selected_index=None), items, gallery_panel.EMPTY_DETAILS]

    project.change(
        show_project,
        inputs=project,
        outputs=[results.gallery, results.items, results.details],
    )
