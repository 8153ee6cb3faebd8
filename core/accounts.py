"""Users, organizations and roles: sign-up, sign-in and who may do what."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, insert, select

from core.errors import AuthenticationFailed, Conflict, Forbidden, InvalidInput, NotFound
from core.types import Role
from db.schema import memberships, new_id, organizations, users

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
MIN_PASSWORD_LENGTH = 8
ROLE_RANK = {Role.VIEWER: 0, Role.CREATOR: 1, Role.MANAGER: 2, Role.OWNER: 3}


@dataclass(frozen=True)
class Principal:
    """A signed-in user acting in one organization with one role."""

    user_id: str
    email: str
    org_id: str
    org_name: str
    role: Role

    def require(self, role: Role, action: str) -> None:
        """Raise Forbidden unless this member's role is at least `role`."""
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            raise Forbidden(f"Your role ({self.role}) cannot {action}; ask a {role} or an owner.")


def normalize_email(email: str) -> str:
    """Lower-cased, trimmed e-mail, or InvalidInput."""
    value = (email or "").strip().lower()
    if not _EMAIL.match(value):
        raise InvalidInput(f"'{email}' is not an e-mail address.")
    return value


def hash_password(password: str) -> str:
    """argon2id hash of a password that meets the minimum length."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > 1024:
        raise InvalidInput("A password can have at most 1024 characters.")
    return _hasher.hash(password)


def generate_password() -> str:
    """A random password for a first-run owner account."""
    return secrets.token_urlsafe(12)


def create_user(conn: Connection, email: str, password: str, org_name: str | None, role: Role) -> Principal:
    """Create a user and make them a member of `org_name` (created if new) with `role`."""
    email = normalize_email(email)
    if conn.execute(select(users.c.id).where(users.c.email == email)).first():
        raise Conflict(f"A user with the e-mail {email} exists already.")
    user_id = new_id()
    conn.execute(insert(users).values(id=user_id, email=email, password_hash=hash_password(password)))
    org_name = (org_name or "").strip() or email.split("@")[0]
    if len(org_name) > 200:
        raise InvalidInput("An organization name can have at most 200 characters.")
    org_id = conn.execute(select(organizations.c.id).where(organizations.c.name == org_name)).scalar()
    if org_id is None:
        org_id = new_id()
        conn.execute(insert(organizations).values(id=org_id, name=org_name))
    conn.execute(insert(memberships).values(org_id=org_id, user_id=user_id, role=str(role)))
    return Principal(user_id, email, org_id, org_name, role)


def user_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def authenticate(conn: Connection, email: str, password: str) -> Principal:
    """The principal for a correct e-mail and password; AuthenticationFailed otherwise."""
    try:
        email = normalize_email(email)
    except InvalidInput as exc:
        raise AuthenticationFailed("Wrong e-mail or password.") from exc
    row = conn.execute(select(users.c.password_hash).where(users.c.email == email)).first()
    if row is None:
        # Hash anyway so a missing account takes as long as a wrong password.
        _hasher.hash(password or "x")
        raise AuthenticationFailed("Wrong e-mail or password.")
    try:
        _hasher.verify(row.password_hash, password or "")
    except (VerificationError, InvalidHashError) as exc:
        raise AuthenticationFailed("Wrong e-mail or password.") from exc
    return principal_for(conn, email)


def principal_for(conn: Connection, email: str, org_name: str | None = None) -> Principal:
    """The principal of a user in their (first, or named) organization."""
    query = (
        select(
            users.c.id,
            users.c.email,
            organizations.c.id.label("org_id"),
            organizations.c.name,
            memberships.c.role,
        )
        .join(memberships, memberships.c.user_id == users.c.id)
        .join(organizations, organizations.c.id == memberships.c.org_id)
        .where(users.c.email == normalize_email(email))
        .order_by(memberships.c.created_at)
    )
    if org_name:
        query = query.where(organizations.c.name == org_name)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"No member {email}" + (f" in {org_name}." if org_name else "."))
    return Principal(row.id, row.email, row.org_id, row.name, Role(row.role))


def sole_principal(conn: Connection) -> Principal:
    """The principal of the only user; InvalidInput when there are none or several."""
    emails = conn.execute(select(users.c.email).limit(2)).scalars().all()
    if len(emails) != 1:
        reason = "there is no account yet" if not emails else "there are several members"
        raise InvalidInput(f"Say which member to act as with --user EMAIL ({reason}).")
    return principal_for(conn, emails[0])
