"""The data refresh `mlops-ci monitor` runs when served traffic has drifted (monitoring.retrain).

A stand-in for a warehouse export: a new snapshot for the month the drift was seen in
(MLOPS_CI_WINDOW_END), with the higher prices the traffic showed, tracked with DVC. mlops-ci
commits what this changes (the .dvc files) on a retraining branch and pushes the data to the DVC
remote first.
"""

import os
import subprocess
import sys

month = os.environ.get("MLOPS_CI_WINDOW_END", "2026-11")[:7]
subprocess.run([sys.executable, "generate_data.py", "--snapshot", month, "--rows", "15000", "--seed", "3",
                "--price-increase", "40", "--new-plan"], check=True)
subprocess.run([sys.executable, "-m", "dvc", "add", "--quiet", "data/train.csv", "data/eval.csv"], check=True)
