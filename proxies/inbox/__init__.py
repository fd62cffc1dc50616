"""The Inbox server (seed 001: "the repository where the completed user report data is
stored, maintained, and eventually deleted"): items, their files, notifications."""
