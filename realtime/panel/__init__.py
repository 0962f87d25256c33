"""The Gradio panel: every method of "Visualizing and Understanding" CNNs, and fast style.

``python -m realtime.panel`` serves it on 127.0.0.1. ``build_app()`` returns the page
for tests and embedding; ``methods`` holds one plain handler per tab.
"""

from realtime.panel.app import build_app

__all__ = ["build_app"]
