"""The Gradio panel: every method of "Visualizing and Understanding" CNNs, and fast style.

``python -m realtime.panel`` serves it on 127.0.0.1. ``build_app()`` returns the page
for tests and embedding; ``methods`` holds one plain handler per tab.
"""

__all__ = ["build_app"]


def __getattr__(name: str):
    # Lazy: the training worker process imports realtime.panel.trainer without Gradio.
    if name == "build_app":
        from realtime.panel.app import build_app

        return build_app
    raise AttributeError(name)
