"""State directories from before several projects shared one code location: what still works and
what (if anything) to run. Shown by ``mlgov status`` and ``mlgov ui``; nothing here changes state."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from mlgov_assets.core.settings import Settings

#: Asset names that existed unprefixed before asset keys were prefixed by the project.
OLD_KEYS = ("champion", "training_data", "challenger_model", "candidate_model", "batch_data", "model_cards")


def state_notices(settings: Settings, instance: DagsterInstance | None = None) -> list[str]:
    """One sentence per leftover of the old layout found under the location's state directory."""
    notices = []
    if instance is not None:
        old = sorted(k.path[0] for k in instance.get_asset_keys() if len(k.path) == 1 and k.path[0] in OLD_KEYS)
        if old:
            notices.append(
                f"{settings.dagster_home}: Dagster history under the asset keys of before projects were prefixed "
                f"({', '.join(old)}). It stays readable in the UI and by `mlgov audit` (registry, champion, decision "
                f"log and batch ledger are unchanged); new runs record under <project>/... . Nothing to run."
            )
    for old_home in sorted((settings.location / "projects").glob("*/dagster")):
        name = old_home.parent.name
        notices.append(
            f"project {name}: its Dagster history from before the shared code location is in {old_home} "
            f"(runs now go to {settings.dagster_home}); its registry stays in {old_home.parent / 'mlflow'}. "
            f"Versions trained before keep working; `mlgov --project {name} audit champion` reports their "
            f"Dagster links as missing until it is retrained (`mlgov --project {name} train`)."
        )
    return notices
