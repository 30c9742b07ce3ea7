"""The network as an MLflow model ("models from code": MLflow runs this file to build the
model, so nothing of ours is pickled). tracking.models logs it with the scratchnet package
as its code, a run's model.npz as its one artifact and the data's scale as its model_config.

Input: rows with a column ``t`` (a DataFrame, or a list of {"t": ...}), the time index on the
scale the network was trained on (0 at the first observation, 1 at the last). Output: rows with
a column ``y``, the fitted curve on the observations' scale (before the min-max normalisation
the network was trained on), computed by ``nn.network.predict``, the function the run's own fit
uses. The type hints are the model's signature: MLflow checks every input row against ``Time``
and refuses a row without a number t, in one line that names t.
"""

from __future__ import annotations

import numpy as np
import pydantic
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from scratchnet.nn.network import predict
from scratchnet.weights import load_weights


class Time(pydantic.BaseModel):
    t: float  # an int is taken as a float; a string is refused


class Fitted(pydantic.BaseModel):
    y: float


class NetworkModel(PythonModel):
    def load_context(self, context) -> None:
        self.params, self.activation = load_weights(context.artifacts["weights"])
        scale = context.model_config  # {"y_low": ..., "y_span": ...}: the data's min and range
        self.y_low, self.y_span = float(scale["y_low"]), float(scale["y_span"])

    def predict(self, model_input: list[Time], params=None) -> list[Fitted]:
        # MLflow passes Time rows; its check of the input example at log time passes dicts
        t = np.array([[Time.model_validate(row).t] for row in model_input], dtype=np.float64)
        y = predict(self.params, t, self.activation)[:, 0]
        return [Fitted(y=value) for value in self.y_low + self.y_span * y]


set_model(NetworkModel())
