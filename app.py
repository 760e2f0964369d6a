"""SemFlow Studio: `python app.py` serves the app on `$SEMFLOW_MODEL` or the embedded default model."""

from app.ui import build_demo, launch

if __name__ == "__main__":
    launch(build_demo())
