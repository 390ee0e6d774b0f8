"""``serving.logging``: KServe's payload logging (``predictor.logger``) of an InferenceService.

Every request and response the predictor serves is sent as a CloudEvent to ``url`` (http or
https), or, with ``storage``, written in batches to blob storage at ``url`` (``s3://``, ``gs://``
or ``abfs://``: KServe's agent picks storage by that scheme) as JSON or Parquet. Monitoring reads
what this logs. The settings KServe would ignore in the mode chosen are refused here instead, each
at its line: KServe's agent would accept them and do something else.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from mlops_ci.config.base import Strict, setting_errors

STORAGE_SCHEMES = ("s3", "gs", "abfs")  # what KServe's agent writes to (pkg/logger/store.go)
HTTP_SCHEMES = ("http", "https")
# a Go time.Duration as KServe's agent parses --log-batch-interval: 500ms, 5s, 1m30s
_DURATION_RE = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")  # an HTTP header name (RFC 9110 token)
_PARAMETER_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _url(value: str) -> str:
    if any(c in value for c in " \t\r\n\0") or _scheme(value) not in (*HTTP_SCHEMES, *STORAGE_SCHEMES):
        raise ValueError(f"{value!r} is not a logger URL: write http(s)://host/path for CloudEvents, or "
                         f"{', '.join(s + '://bucket' for s in STORAGE_SCHEMES)} with storage")
    if "@" in value.split("://", 1)[1].split("/", 1)[0] or _holds_a_secret(value):
        raise ValueError("the logger URL holds credentials (not shown): remove them (a token in the query "
                         "string too); storage credentials come from storage.key and storage.service_account")
    return value


_TOKEN_PARAMETERS = {"sig", "signature", "token", "key", "code", "apikey", "api_key", "access_token", "password",
                     "passwd", "secret", "client_secret", "auth", "authorization"}


def _holds_a_secret(text: str) -> bool:
    """A credential's shape (a token, a key id, a signed URL's signature) or a query parameter that
    carries one: what the masking in logs would hide must never be committed in a manifest."""
    from urllib.parse import parse_qsl, urlsplit

    from mlops_ci.masking import is_credential_name, mask

    if mask(text, env={}) != text:
        return True
    query = urlsplit(text).query if "://" in text else ""
    return any(name.lower() in _TOKEN_PARAMETERS or is_credential_name(name)
               for name, _ in parse_qsl(query, keep_blank_values=True))


def _duration(value: str) -> str:
    if not _DURATION_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a duration KServe's agent reads: write e.g. 500ms, 5s or 1m30s")
    return value


def _header(value: str) -> str:
    if not _HEADER_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value


def _parameters(value: dict[str, str]) -> dict[str, str]:
    from mlops_ci.masking import is_credential_name

    for name, text in value.items():
        if not _PARAMETER_RE.fullmatch(name) or any(c in text for c in "\r\n\0"):
            raise ValueError(f"storage parameter {name!r} is not a plain name with a one-line value")
        if is_credential_name(name) or _holds_a_secret(text):
            raise ValueError(f"storage parameter {name!r} would put a credential in the manifest (not shown): "
                             "keep it in the secret that storage.key names")
    return value


LoggerUrl = Annotated[str, AfterValidator(_url)]
Duration = Annotated[str, AfterValidator(_duration)]
HeaderName = Annotated[str, AfterValidator(_header)]


class LoggerStorage(Strict):
    path: str = Field(min_length=1, max_length=1000, pattern=r"^[^\s\x00]+$",
                      description="folder in the bucket that url names, e.g. /logs/churn")
    key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,253}$",
                            description="the key, in the storage secret, of these credentials (KServe "
                            "storage.key); the secret itself never appears here")
    parameters: Annotated[dict[str, str], AfterValidator(_parameters)] = Field(
        default={}, description="KServe storage.parameters, e.g. {type: s3, region: eu-west-1} (no credentials; "
        "format comes from marshaller)")
    service_account: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
                                        description="service account whose secret holds the credentials "
                                        "(KServe storage.serviceAccountName)")


class PayloadLogging(Strict):
    """What KServe's agent logs of each request, and where."""

    mode: Literal["all", "request", "response"] = Field(default="all", description="what is logged")
    url: LoggerUrl | None = Field(
        default=None, description="where: an http(s) URL receiving CloudEvents (left out: the default url of "
        "KServe's logger configuration, usually the namespace's broker), or with storage the bucket, s3://, "
        "gs:// or abfs://")
    storage: LoggerStorage | None = Field(default=None, description="write batches to blob storage at url")
    marshaller: Literal["json", "parquet"] | None = Field(
        default=None, description="file format in storage (KServe storage.parameters.format; default json)")
    batch_size: int | None = Field(default=None, ge=1, le=100_000,
                                   description="records per file in storage (default 1: one file per record)")
    batch_interval: Duration | None = Field(
        default=None, description="the longest a partial batch waits before it is written, e.g. 30s (needs "
        "batch_size above 1)")
    metadata_headers: list[HeaderName] = Field(
        default=[], max_length=50, description="request headers copied into each logged event")

    @model_validator(mode="wrap")
    @classmethod
    def _fits_the_mode(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """The rules across settings, each error at the line of the setting it names."""
        model = handler(data)
        problems = model._problems()
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, setting_errors(problems))
        return model

    def _problems(self) -> list[tuple[str, Any, str]]:
        scheme = _scheme(self.url) if self.url else None
        problems: list[tuple[str, Any, str]] = []
        if self.storage is not None:
            if scheme not in STORAGE_SCHEMES:
                problems.append(("storage", self.url, ("storage needs url to name the bucket with "
                                 f"{', '.join(s + '://' for s in STORAGE_SCHEMES)}: KServe's agent writes to "
                                 "storage only when url has one of those schemes, else it posts CloudEvents")))
            given = self.storage.parameters.get("format")
            if given is not None and self.marshaller is not None and given != self.marshaller:
                problems.append(("storage", given, (f"storage.parameters.format {given!r} and marshaller "
                                 f"{self.marshaller!r} disagree: set marshaller only")))
            elif given is not None and given not in ("json", "parquet"):
                problems.append(("storage", given, (f"storage.parameters.format {given!r}: use marshaller: json "
                                 "or parquet")))
        else:
            if scheme in STORAGE_SCHEMES:
                problems.append(("url", self.url, (f"url {self.url!r} is blob storage: add storage (at least its "
                                 "path), or give an http(s) URL for CloudEvents")))
            for name in ("marshaller", "batch_size", "batch_interval"):
                if getattr(self, name) is not None:
                    problems.append((name, getattr(self, name), (f"{name} only applies to logging into storage "
                                     "(CloudEvents are sent one by one): add storage, or remove it")))
        if self.batch_interval is not None and (self.batch_size or 1) <= 1 and self.storage is not None:
            problems.append(("batch_interval", self.batch_interval,
                             "batch_interval flushes a partial batch, so it needs batch_size above 1"))
        return problems

    def manifest(self) -> dict:
        """KServe's ``predictor.logger`` (the CRD's field names)."""
        out: dict = {"mode": self.mode}
        if self.url is not None:
            out["url"] = self.url
        if self.metadata_headers:
            out["metadataHeaders"] = list(self.metadata_headers)
        if self.storage is not None:
            storage: dict = {"path": self.storage.path}
            if self.storage.key is not None:
                storage["key"] = self.storage.key
            parameters = dict(self.storage.parameters)
            parameters["format"] = self.marshaller or parameters.get("format") or "json"
            storage["parameters"] = dict(sorted(parameters.items()))
            if self.storage.service_account is not None:
                storage["serviceAccountName"] = self.storage.service_account
            out["storage"] = storage
            if self.batch_size is not None:
                out["batchSize"] = self.batch_size
            if self.batch_interval is not None:
                out["batchInterval"] = self.batch_interval
        return out


__all__ = ["STORAGE_SCHEMES", "LoggerStorage", "PayloadLogging"]
