"""The typed errors of Creator Workspace.

Every failure a user can meet is one of these; vendor SDK and HTTP errors are translated
into this tree at the provider boundary. The workspace and the CLI map them to messages in
one place (`core.messages`); the REST API maps them to status codes in one place.

    CreatorError
    ├── InvalidInput            the request is wrong; nothing was changed
    ├── NotFound                no such thing (or not yours: we never say which)
    ├── Forbidden               your role does not allow it
    ├── AuthenticationFailed    wrong e-mail or password, or no session
    ├── Conflict                it exists already
    ├── BudgetExceeded          a budget would be overspent
    ├── InsufficientCredits     the credit balance is too low
    ├── RateLimited             too many requests; `retry_after` seconds
    ├── Canceled                the user canceled the work
    └── ProviderError           the model or vendor failed; `retryable` says if another may succeed
        └── ModelUnavailable    the model is not on this machine and cannot be fetched now
"""

from __future__ import annotations


class CreatorError(Exception):
    """Base of every error a user can see; `message` is safe to show."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CreatorError):
    code = "invalid_input"


class NotFound(CreatorError):
    code = "not_found"


class Forbidden(CreatorError):
    code = "forbidden"


class AuthenticationFailed(CreatorError):
    code = "authentication_failed"


class Conflict(CreatorError):
    code = "conflict"


class BudgetExceeded(CreatorError):
    code = "budget_exceeded"


class InsufficientCredits(CreatorError):
    code = "insufficient_credits"


class RateLimited(CreatorError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Canceled(CreatorError):
    code = "canceled"


class ProviderError(CreatorError):
    """A provider failed. `retryable` is True when another attempt or provider may succeed."""

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


class ModelUnavailable(ProviderError):
    code = "model_unavailable"
