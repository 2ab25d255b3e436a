"""Model cards: the evidence bundle (``schema``), its document model (``document``) and the
Markdown/HTML backends (``render``). The public names are re-exported here."""

from mlgov_assets.core.audit.modelcard.render import render_html, render_markdown
from mlgov_assets.core.audit.modelcard.schema import (
    SCHEMA_VERSION,
    SOURCE_KINDS,
    BundleError,
    EvidenceBundle,
    bundle_digest,
    iter_sources,
    parse_bundle,
    schema_table,
    validate_bundle,
)

__all__ = [
    "SCHEMA_VERSION",
    "SOURCE_KINDS",
    "BundleError",
    "EvidenceBundle",
    "bundle_digest",
    "iter_sources",
    "parse_bundle",
    "render_html",
    "render_markdown",
    "schema_table",
    "validate_bundle",
]
