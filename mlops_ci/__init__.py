"""mlops-ci: GitOps CI/CD for machine-learning repositories.

The flow (see README): Context -> Config -> Plan -> stages (check, train, evaluate,
promote) -> RunRecord -> publishers. Heavy libraries (mlflow, torch, dvc, kubernetes) are
imported inside the functions that need them so that importing this package stays cheap.
"""

__version__ = "0.1.0"
