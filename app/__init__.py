"""SemFlow Studio: the Gradio app (UI wiring in `ui`, the work in the other modules)."""
