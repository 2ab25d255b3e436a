"""Distributed execution for the production profile: the Celery executor and its workers.

``config`` (no Celery import) holds the broker/backend settings every process reads from the same
``MLGOV_CELERY_*`` environment; ``worker`` is the module Celery workers start with
(``celery -A mlgov_assets.distributed.worker worker -Q dagster -c 1``). The embedded profile never
imports Celery: :func:`config.location_executor` imports it only when the profile asks for it.
"""
