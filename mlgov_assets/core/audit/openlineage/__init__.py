"""mlgov's lineage as OpenLineage run events (https://openlineage.io), for the catalogs auditors use
(Marquez, DataHub, …).

Why ``openlineage-python`` directly and not the community ``dagster-openlineage`` integration: the
integration wraps Dagster's event-log storage and reports generic asset START/COMPLETE events; it
cannot know what an audit needs — the DVC md5 of the data, the MLflow model URI and version, the
policy hash the gates were judged under and each gate's verdict — nor the chain ``mlgov audit``
verifies (data → validated data → features → model → gates → champion). Wrapping the event-log storage
would also fight the instance's own storage configuration (SQLite here, PostgreSQL in production).
So mlgov builds the events itself, with its own facets, from the facts it already gathers, and
uses the library only for the spec's typed classes (which fill ``_producer``/``_schemaURL``) and
its transports (file, HTTP).

Modules: ``facets`` (mlgov's custom facets; their JSON schemas in ``schemas/``), ``events`` (pure
event building: a Dagster run's steps, and a model version's whole chain from the audit's
:class:`~mlgov_assets.core.audit.lineage.facts.Facts`), ``transport`` (configuration from the
environment, emission that never raises). The library is imported only by these modules, and only
the Dagster layer's hook and the CLI import them (lazily): loading the code location never does.
"""
