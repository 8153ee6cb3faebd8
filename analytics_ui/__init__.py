"""The manager's analytics dashboard (Streamlit): spend, generations and who made them.

It reads everything through `core.studio.Studio`; it never touches the database directly.
"""
