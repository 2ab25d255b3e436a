"""The lineage of a registered model version, gathered, verified link by link, and turned into the
evidence bundle a model card renders.

The chain an auditor follows (``LINKS``, in this order)::

    model_version -> model_artifacts -> mlflow_run -> dagster_run -> materializations
        -> training_data (DVC) -> git_commit -> policy -> checks -> decision_log

Modules: ``model`` (links, tags, result types), ``facts`` (the typed facts the checks read),
``refs`` (MODEL_REF), ``gather`` (facts from the registry, log, git, DVC), ``verify`` and ``gates``
(pure checks), ``audit`` (the chain and the witnessed decision log), ``bundle`` (the evidence
bundle). Import from the defining module.
"""
