"""The dashboard's pages, one file each; Streamlit runs each file as the page's script."""
