"""MLflow "model from code" entry point: logged with model.py as a code path, no pickles."""

from mlflow.models import set_model

from model import ChurnPyfunc

set_model(ChurnPyfunc())
