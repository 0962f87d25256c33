"""One module per tab of the page: its layout (``build``) and its handlers, as methods of one class
that holds the page's :class:`realtime.panel.context.PanelContext`."""
