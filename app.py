"""SemFlow Studio: `python app.py` serves the app (model: `$SEMFLOW_MODEL`, a built Space's model, or the embedded
default; settings: `app.settings`)."""

import logging

from app.service import Studios
from app.ui import build_demo, launch

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    studios = Studios()
    launch(build_demo(studios), studios)
