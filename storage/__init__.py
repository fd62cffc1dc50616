"""Operational stores: SQLite files reached from trio (:mod:`~starwrs.storage.sqlite`),
the sessions and asynchronous tickets (:mod:`~starwrs.storage.sessions`)."""
