"""The analytics dashboard's entry: `streamlit run analytics_ui/app.py` (or `creator analytics`).

Pages live in `analytics_ui/views/`, one file each; add a page there and list it in `PAGES`.
The folder is not called `pages/` on purpose: a `pages/` folder beside the entry script puts
Streamlit into its legacy multipage mode, where a page's URL runs that file without this script,
that is, without the sign-in gate.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from analytics_ui.session import current_principal, sign_in_page, signed_in_sidebar
from core.errors import CreatorError

HERE = Path(__file__).resolve().parent
PAGES_DIR = HERE / "views"
# (file in views/, title, Material icon); the first one is the landing page.
PAGES = [
    ("overview.py", "Overview", ":material/dashboard:"),
]
log = logging.getLogger("analytics_ui")


def navigation() -> st.Page:
    """The pages this browser session may see: the sign-in form, or the dashboard's pages."""
    principal = current_principal()
    if principal is None:
        sign_in = st.Page(sign_in_page, title="Sign in", icon=":material/login:", url_path="sign-in")
        return st.navigation([sign_in], position="hidden")
    signed_in_sidebar(principal)
    pages = [
        st.Page(PAGES_DIR / name, title=title, icon=icon, default=index == 0)
        for index, (name, title, icon) in enumerate(PAGES)
    ]
    return st.navigation({"Analytics": pages})


def main() -> None:
    """Draw the page the user asked for; errors become messages, never tracebacks."""
    st.set_page_config(
        page_title="Analytics · Creator Workspace",
        page_icon=str(HERE / "assets" / "icon.svg"),
        layout="wide",
    )
    st.logo(str(HERE / "assets" / "logo.svg"), size="large", icon_image=str(HERE / "assets" / "icon.svg"))
    try:
        navigation().run()
    except CreatorError as exc:
        st.error(exc.message)
    except Exception:
        log.exception("analytics page failed")
        st.error("Something went wrong while drawing this page; the details are in the server log.")


main()
