"""Governed projects: the declarative spec of a team's dataset and the readers, schemas and features
generated from it (``spec`` → ``project`` → ``reader``, ``schemas``, ``features``)."""
