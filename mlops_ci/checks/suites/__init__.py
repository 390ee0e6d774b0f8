"""deepchecks suites (data integrity, train–test validation, model evaluation), run in their own
pinned environment: the core writes Parquet and predictions, a worker in that environment runs
the suite, and the core reads back a validated JSON result. Nothing here imports deepchecks.

    from mlops_ci.checks.suites import SuiteSpec, SuiteConfig, run_suite
    result = run_suite(SuiteSpec(name="train_test_validation", config=SuiteConfig(enabled=True)),
                       train=train_df, test=test_df, label="label", task="binary",
                       out_dir=Path(".mlops-ci/suites/train_test_validation"))
"""

from mlops_ci.checks.suites.env import DeepchecksEnv, EnvBuildError, ensure_env
from mlops_ci.checks.suites.models import Predictions, SuiteSpec
from mlops_ci.checks.suites.runner import run_suite, sample_indices
from mlops_ci.config.suites import SuiteConfig, SuitesConfig
from mlops_ci.records.suites import SuiteCheckResult, SuiteResult
from mlops_ci.toolenv import cache_root

__all__ = [
    "DeepchecksEnv", "EnvBuildError", "Predictions", "SuiteCheckResult", "SuiteConfig",
    "SuiteResult", "SuiteSpec", "SuitesConfig", "cache_root", "ensure_env", "run_suite",
    "sample_indices",
]
