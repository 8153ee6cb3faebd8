"""Who is looking: the process-wide Studio, the sign-in gate and the signed-in sidebar."""

from __future__ import annotations

import streamlit as st

from analytics_ui.markup import literal
from core.accounts import Principal
from core.composition import build_studio
from core.errors import CreatorError, Forbidden
from core.studio import Studio
from core.types import Role

PRINCIPAL_KEY = "principal"
WRONG_ROLE = (
    "The analytics dashboard is for owners and managers. You are a {role} in {org}: "
    "use the workspace to generate, or ask an owner of {org} to make you a manager."
)


@st.cache_resource(show_spinner="Opening the studio…")
def studio() -> Studio:
    """The one Studio of this process, built from the environment (CREATOR_HOME, DATABASE_URL)."""
    return build_studio()


def current_principal() -> Principal | None:
    """The member signed in to this browser session, if any."""
    return st.session_state.get(PRINCIPAL_KEY)


def signed_in_principal() -> Principal:
    """The signed-in member; a page reached without one stops with a pointer to sign in."""
    principal = current_principal()
    if principal is None:
        st.info("Sign in to see the dashboard.")
        st.stop()
    return principal


def sign_out() -> None:
    """Forget the signed-in member of this browser session."""
    st.session_state.pop(PRINCIPAL_KEY, None)


def sign_in_page() -> None:
    """The sign-in form; on success the member is kept in the session and the app reruns."""
    _, middle, _ = st.columns([1, 1.2, 1])
    with middle:
        st.title("Creator Workspace")
        st.caption("Analytics for owners and managers: what your studio makes and what it costs.")
        with st.form("sign-in", border=True):
            email = st.text_input("E-mail", key="sign_in_email", autocomplete="username")
            password = st.text_input(
                "Password",
                type="password",
                key="sign_in_password",
                autocomplete="current-password",
            )
            submitted = st.form_submit_button("Sign in", type="primary", width="stretch")
        if submitted and _sign_in(email, password):
            st.rerun()


def _sign_in(email: str, password: str) -> bool:
    try:
        principal = studio().sign_in(email, password)
    except CreatorError as exc:
        st.error(exc.message)
        return False
    try:
        principal.require(Role.MANAGER, "open the analytics dashboard")
    except Forbidden:
        st.error(WRONG_ROLE.format(role=principal.role, org=literal(principal.org_name)), icon="🔒")
        return False
    st.session_state[PRINCIPAL_KEY] = principal
    return True


def signed_in_sidebar(principal: Principal) -> None:
    """Who is signed in, in which organization, and the sign-out button."""
    with st.sidebar:
        st.markdown(f"**{literal(principal.org_name)}**")
        st.text(f"{principal.email} · {principal.role}")  # plain text: no mailto link
        st.button("Sign out", on_click=sign_out, icon=":material/logout:", width="stretch")
