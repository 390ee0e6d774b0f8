"""`.mlops-ci.yaml`: schema, loading with file:line:column errors, and JSON Schema export."""

from mlops_ci.config.loader import CONFIG_NAME, PROMOTIONS_NAME, LoadedConfig, find_config, load_config
from mlops_ci.config.schema import Config, ModelConfig, json_schema

__all__ = ["CONFIG_NAME", "PROMOTIONS_NAME", "Config", "LoadedConfig", "ModelConfig", "find_config", "json_schema", "load_config"]
