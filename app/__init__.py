"""SemFlow Studio: the Gradio app (UI wiring in `ui`, pure helpers in the other modules)."""
