"""The Gradio workspace where creators generate media, mounted on the FastAPI server."""
