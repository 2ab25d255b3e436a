"""Production monitoring as plain functions (no Dagster): what the batch sensor, the per-batch
assets, the retraining sensor and the schedules do.

Modules, in the order a batch meets them: ``landing`` (the landing folder), ``intake`` (the
validation gate and quarantine), ``scoring`` (champion + shadow), ``reference`` and
``drift_assessment`` (drift against the champion's training data; the engine is ``drift`` with
``profile`` and ``drift_stats``), ``labels`` and ``performance``, ``drift_report`` (Evidently for
people, ``evidently_preset``), ``retrain_plan`` / ``retrain_dataset`` / ``retraining``, ``summary``,
``reevaluation``. Shared: ``ledger`` (state files, the batch ledger), ``alerts``, ``batches`` (ids,
files, simulation), ``metrics`` (performance, breach rule, McNemar). Import from the defining module.
"""
