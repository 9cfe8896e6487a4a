"""Feed formats: each turns a source (a file or a download) into indicators, entities and item errors.

Formats are plugins of the ``vigil.feeds`` entry-point group (``base.FeedParser``); the built-in ones
load through the same path as third-party ones.
"""
