"""The knowledge base: Markdown pages with their versions, search, and publishing to a git-backed wiki."""
