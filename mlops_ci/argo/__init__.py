"""What mlops-ci sends to Argo Workflows, as plain data (the transports live in mlops_ci.backends.argo)."""

from mlops_ci.argo.workflow import MlflowRun, build_workflow, label_value, template_for, workflow_name

__all__ = ["MlflowRun", "build_workflow", "label_value", "template_for", "workflow_name"]
