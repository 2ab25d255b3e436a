"""MLflow packaging for models that are not plain sklearn pipelines (imported only when used).

A fairness-mitigated model applies group-specific thresholds to its base pipeline's score, so it
is logged as a pyfunc whose ``predict`` returns decisions (0/1) from raw applicant rows,
including the sensitive columns it needs. Its artifact files get a sha256 manifest like any
other model and are verified before every load.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.pyfunc.model import PythonModel


class MitigatedPyfunc(PythonModel):
    """The pyfunc wrapper: ``predict`` returns the wrapped model's 0/1 decisions."""

    def __init__(self, model: Any):
        self.model = model

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        return np.asarray(self.model.predict(model_input), dtype=np.int64)
