"""Projects: the folders a team's generations and assets live in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, or_, select

from core.accounts import Principal
from core.errors import Conflict, InvalidInput, NotFound
from core.types import Role
from db.schema import new_id, projects


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    name: str
    created_at: datetime


def list_projects(conn: Connection, principal: Principal) -> list[ProjectInfo]:
    """The organization's projects, newest first."""
    rows = conn.execute(
        select(projects.c.id, projects.c.name, projects.c.created_at)
        .where(projects.c.org_id == principal.org_id)
        .order_by(projects.c.created_at.desc(), projects.c.name)
    )
    return [ProjectInfo(r.id, r.name, r.created_at) for r in rows]


def create_project(conn: Connection, principal: Principal, name: str) -> ProjectInfo:
    """A new project in the principal's organization."""
    principal.require(Role.CREATOR, "create projects")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A project needs a name.")
    if len(name) > 200:
        raise InvalidInput("A project name can have at most 200 characters.")
    exists = conn.execute(
        select(projects.c.id).where(projects.c.org_id == principal.org_id, projects.c.name == name)
    ).first()
    if exists:
        raise Conflict(f"There is already a project called '{name}'.")
    project_id = new_id()
    conn.execute(
        insert(projects).values(
            id=project_id, org_id=principal.org_id, name=name, created_by=principal.user_id
        )
    )
    row = conn.execute(select(projects.c.created_at).where(projects.c.id == project_id)).one()
    return ProjectInfo(project_id, name, row.created_at)


def find_project(conn: Connection, principal: Principal, id_or_name: str) -> ProjectInfo:
    """A project of the principal's organization by id or name; NotFound otherwise."""
    row = conn.execute(
        select(projects.c.id, projects.c.name, projects.c.created_at).where(
            projects.c.org_id == principal.org_id,
            or_(projects.c.id == id_or_name, projects.c.name == id_or_name),
        )
    ).first()
    if row is None:
        raise NotFound(f"No project '{id_or_name}' in {principal.org_name}.")
    return ProjectInfo(row.id, row.name, row.created_at)
