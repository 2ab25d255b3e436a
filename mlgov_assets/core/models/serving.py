"""MLflow packaging for models that are not plain sklearn pipelines (imported only when used).

A fairness-mitigated model applies group-specific thresholds to its base pipeline's score, so it
is logged as a pyfunc whose ``predict`` returns decisions (0/1) from raw applicant rows,
including the sensitive columns it needs. Its artifact files get a sha256 manifest like any
other model and are verified before every load.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np


class MitigatedPyfunc(mlflow.pyfunc.PythonModel):
    def __init__(self, model: Any):
        self.model = model

    def predict(self, context, model_input, params=None):
        return np.asarray(self.model.predict(model_input), dtype=np.int64)
