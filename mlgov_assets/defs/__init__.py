"""The Dagster layer: one module per graph stage, each short, calling mlgov_assets.core."""

import warnings

from dagster import BetaWarning, PreviewWarning

# observable_source_asset / pools are marked beta; the warnings say nothing a user can act on
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
