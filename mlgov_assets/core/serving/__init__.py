"""Online scoring (``mlgov serve``), the pure part: request validation, the model holder with its
hot swap, the prediction log and the batch roller that feeds the monitoring loop. The HTTP app
(FastAPI) lives outside core, in ``mlgov_assets/serve``."""
