"""The PyGithub client the GitHub publisher uses: built from the environment, with retries.

:class:`ApiRetry` (a urllib3 ``Retry``, what PyGithub's ``retry=`` takes) retries

- 5xx answers, for idempotent methods only (GET, PUT, DELETE, ...): a POST or PATCH that got
  a 5xx may have been applied (GitHub answers 502 after committing more often than one would
  like), so the publisher re-finds what it wrote before sending it again;
- rate limits, for every method (a refused request was not applied): a secondary limit waits
  ``Retry-After`` seconds, a primary limit (``x-ratelimit-remaining: 0``) waits until
  ``x-ratelimit-reset``;

and gives up, handing GitHub's answer back to PyGithub, once the waits would add up to more
than ``max_wait`` seconds. PyGithub and requests are imported only inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from mlops_ci.errors import BackendError

if TYPE_CHECKING:
    from github import Github, GithubException

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_MAX_WAIT = 120.0  # seconds of waiting for rate limits and backoff, all retries together
RATE_LIMIT_STATUSES = (403, 429)
T = TypeVar("T")


class GitHubError(BackendError):
    """A GitHub API call failed; the message names the call and what to do."""


class ApiRetry(Retry):
    """Retry 5xx (idempotent methods) and rate limits (all methods), waiting at most ``max_wait``."""

    def __init__(self, *, max_wait: float = DEFAULT_MAX_WAIT, waited: float = 0.0, **kwargs: Any) -> None:
        kwargs.setdefault("total", 5)
        kwargs.setdefault("backoff_factor", 1.0)
        kwargs.setdefault("status_forcelist", (*RATE_LIMIT_STATUSES, 500, 502, 503, 504))
        kwargs.setdefault("allowed_methods", Retry.DEFAULT_ALLOWED_METHODS)  # no POST, no PATCH
        kwargs.setdefault("raise_on_status", False)  # out of retries: PyGithub sees GitHub's answer
        super().__init__(**kwargs)
        self.max_wait = max_wait
        self.waited = waited
        self.next_wait: float | None = None

    def new(self, **kw: Any) -> ApiRetry:
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code in RATE_LIMIT_STATUSES:
            return bool(self.total)  # increment() tells a rate limit from a permission error
        return super().is_retry(method, status_code, has_retry_after)

    def rate_limit_wait(self, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying, or None when the answer is not a rate limit."""
        retry_after = headers.get("Retry-After")
        if retry_after:
            return max(self.parse_retry_after(retry_after), 0.0)
        reset = headers.get("X-RateLimit-Reset")
        if headers.get("X-RateLimit-Remaining") == "0" and reset and reset.isdigit():
            return max(int(reset) - time.time(), 0.0) + 1.0  # the reset happens within that second
        return None

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> ApiRetry:
        if response is None:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        wait = None
        if response.status in RATE_LIMIT_STATUSES:
            wait = self.rate_limit_wait(response.headers)
            if wait is None:  # "Resource not accessible by integration" and the like: not ours to retry
                raise MaxRetryError(_pool, url, ResponseError(f"{response.status} is not a rate limit"))
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if wait is None:
            wait = self.get_retry_after(response) or new.get_backoff_time()
        if self.waited + wait > self.max_wait:
            raise MaxRetryError(_pool, url, ResponseError(
                f"waiting {wait:.0f}s more would exceed the {self.max_wait:.0f}s allowed"))
        new.waited = self.waited + wait
        new.next_wait = wait
        return new

    def sleep(self, response: Any = None) -> None:
        if self.next_wait is None:
            super().sleep(response)
        elif self.next_wait > 0:
            time.sleep(self.next_wait)


def make_client(env: Mapping[str, str], *, token: str | None = None, api_url: str | None = None,
                max_wait: float = DEFAULT_MAX_WAIT, timeout: int = 30, **options: Any) -> Github:
    """A ``github.Github`` for ``GITHUB_TOKEN`` at ``GITHUB_API_URL``, retrying with :class:`ApiRetry`.

    ``options`` go to ``github.Github`` (tests pass ``seconds_between_requests=0`` and
    ``seconds_between_writes=0``; PyGithub's defaults pace requests as GitHub asks)."""
    from github import Auth, Github

    token = token or env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    if not token:
        raise GitHubError("GITHUB_TOKEN is not set, so mlops-ci cannot post to GitHub",
                          hint="pass `env: GITHUB_TOKEN: ${{ github.token }}` to the step, or use --to local")
    base_url = (api_url or env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    options.setdefault("retry", ApiRetry(max_wait=max_wait))
    return Github(auth=Auth.Token(token), base_url=base_url, timeout=timeout, **options)


def error_message(err: GithubException) -> str:
    data = err.data
    if isinstance(data, dict):
        message = str(data.get("message") or "")
        details = [str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
                   for e in data.get("errors") or []]
        return message + (f" ({'; '.join(details)})" if details else "")
    text = str(data or "")
    return "an HTML error page" if text.lstrip().startswith("<") else text[:200]


def is_not_accessible(err: GithubException) -> bool:
    return err.status == 403 and "not accessible by integration" in error_message(err).lower()


def _hint(err: GithubException) -> str:
    from github import RateLimitExceededException

    headers = {k.lower(): v for k, v in (err.headers or {}).items()}
    if isinstance(err, RateLimitExceededException) or headers.get("x-ratelimit-remaining") == "0":
        reset = headers.get("x-ratelimit-reset")
        when = (time.strftime(" (it resets at %H:%M:%S UTC)", time.gmtime(int(reset)))
                if reset and reset.isdigit() else "")
        return f"GitHub's rate limit for this token is used up{when}: rerun the job later"
    if err.status == 401:
        return "the token is missing, expired or wrong: pass the workflow's GITHUB_TOKEN"
    if is_not_accessible(err):
        needed = headers.get("x-accepted-github-permissions")
        return ("this token cannot write to the pull request: for fork PRs post from a workflow_run job; "
                "otherwise grant the job `permissions: pull-requests: write, checks: write`"
                + (f" (GitHub wants: {needed})" if needed else ""))
    if err.status == 403:
        return "the token lacks permission for this: check the job's `permissions:`"
    if err.status == 404:
        return ("the repository or pull request does not exist or the token cannot see it: "
                "check GITHUB_REPOSITORY and --pr")
    if err.status == 422:
        return "GitHub refused the request's content: please report it as an mlops-ci bug"
    if err.status >= 500:
        return "GitHub is failing right now: rerun the job in a few minutes"
    return "see the message from GitHub above"


@contextmanager
def api_call(method: str, url: str) -> Iterator[None]:
    """Turn PyGithub and network errors inside the block into :class:`GitHubError` naming the call."""
    import requests
    from github import GithubException

    try:
        yield
    except GithubException as err:
        raise GitHubError(f"GitHub API {method} {url} failed: {err.status} {error_message(err)}",
                          hint=_hint(err)) from err
    except requests.exceptions.RequestException as err:
        raise GitHubError(f"GitHub API {method} {url}: no answer ({type(err).__name__}: {err})",
                          hint="check GITHUB_API_URL and the runner's network, then rerun the job") from err


def write_once(send: Callable[[], T], applied: Callable[[], T | None], *, attempts: int = 3) -> T:
    """Send a write that must not be applied twice (a POST, a PATCH that appends).

    After a 5xx the write may have been applied anyway, so ``applied()`` looks for it first and
    only when it finds nothing is the write sent again (at most ``attempts`` times in all)."""
    from github import GithubException

    for attempt in range(1, attempts + 1):
        try:
            return send()
        except GithubException as err:
            if err.status < 500 or attempt == attempts:
                raise
            found = applied()
            if found is not None:
                return found
    raise AssertionError("unreachable")  # pragma: no cover
