"""Starting cases, the case list and the case page."""
