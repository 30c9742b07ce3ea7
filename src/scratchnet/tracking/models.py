"""A run's network as an MLflow model, and the winners of a sweep in the Model Registry.

``log_network`` logs a run's model once (MLflow's models from code: model_code.py, with the
scratchnet package as its code and the run's own model.npz as its artifact); it appears
under the run's and the experiment's *Models*. ``register`` makes it a version of a
registered model and points an alias at it; a run registered before is not registered again.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from ..weights import WEIGHTS_FILE
from .store import with_retry

MODEL_NAME = "model"  # the logged model's name in the run
MODEL_CODE = Path(__file__).parents[1] / "model_code.py"
PACKAGE = Path(__file__).parents[1]  # src/scratchnet: the model's code, copied into it
# on a registered version: which sweep it won, where, and how surely
TAG_SWEEP = "scratchnet.sweep_run_id"  # the sweep's parent run
TAG_CONDITION = "scratchnet.condition"  # e.g. "noise=0.06"; "" for a sweep without one
TAG_SETTING = "scratchnet.setting"  # e.g. "hidden_size=8 lr=0.1"
TAG_TRUE_MSE = "scratchnet.true_mse"  # its geometric mean and 95% interval over the seeds
TAG_TIED = "scratchnet.tied"  # how many other settings of the condition are tied with it


def requirements() -> list[str]:
    """What the model needs besides its own code, at the versions that logged it (MLflow
    brings pydantic, which its type hints use; pandas reads a DataFrame's rows)."""
    import mlflow
    import numpy
    import pandas

    return [f"mlflow=={mlflow.__version__}", f"numpy=={numpy.__version__}",
            f"pandas=={pandas.__version__}"]


def logged_model(client, run_id: str) -> str | None:
    """The URI (models:/<model id>) of the model already logged to the run, or None."""
    from mlflow.entities import LoggedModelStatus

    outputs = with_retry(client.get_run, run_id).outputs
    for output in (outputs.model_outputs if outputs else []):
        model = with_retry(client.get_logged_model, output.model_id)
        if model.name == MODEL_NAME and model.status == LoggedModelStatus.READY:
            return f"models:/{model.model_id}"
    return None


def log_network(client, uri: str, exp_id: str, run_id: str, y_low: float, y_span: float) -> str:
    """Log the run's network as an MLflow model (once: a model logged before is reused) and
    return its URI. y_low, y_span: the data's minimum and range, which turn the network's
    output back into the observations' units. The run itself is not touched (no resumed run:
    its status and end time stay)."""
    import mlflow
    from mlflow.entities import LoggedModelOutput

    found = logged_model(client, run_id)
    if found:
        return found
    for chatty in ("mlflow.models", "mlflow.pyfunc"):  # INFO lines on checking the example
        logging.getLogger(chatty).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)  # the fluent API below logs to the process's store
    model = mlflow.initialize_logged_model(name=MODEL_NAME, source_run_id=run_id,
                                           experiment_id=exp_id)
    with tempfile.TemporaryDirectory() as tmp:
        weights = with_retry(client.download_artifacts, run_id, WEIGHTS_FILE, tmp)
        info = mlflow.pyfunc.log_model(
            model_id=model.model_id, python_model=str(MODEL_CODE), code_paths=[str(PACKAGE)],
            artifacts={"weights": weights}, model_config={"y_low": y_low, "y_span": y_span},
            input_example=[{"t": 0.0}, {"t": 0.5}, {"t": 1.0}], pip_requirements=requirements())
    with_retry(client.log_outputs, run_id, [LoggedModelOutput(model.model_id, step=0)])
    return info.model_uri


def register(client, name: str, model_uri: str, run_id: str, alias: str,
             tags: dict[str, str], description: str = "") -> tuple[str, bool]:
    """(version, new): the version of ``name`` holding the run's model (``model_uri``:
    models:/<model id>), registered now (with ``tags`` and ``description``, and ``alias``
    moved to it) or found from an earlier registration (left as is). Through the client, so
    nothing is printed: mlflow.register_model would print two lines per version."""
    from mlflow.exceptions import MlflowException

    # its retries of a refused write are INFO lines on stderr; the caller says it in one line
    logging.getLogger("mlflow.store.model_registry").setLevel(logging.WARNING)
    earlier = with_retry(client.search_model_versions,
                         f"name = '{name}' and run_id = '{run_id}'")
    if earlier:
        return str(min(int(v.version) for v in earlier)), False
    try:
        with_retry(client.create_registered_model, name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = with_retry(client.create_model_version, name, model_uri, run_id, tags=tags,
                         description=description or None,
                         model_id=model_uri.removeprefix("models:/")).version
    with_retry(client.set_registered_model_alias, name, alias, version)
    return str(version), True
