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
    └── ProviderError           the model or vendor failed (`retryable`: try again; `fallback`: try another)
        ├── ProviderAuthFailed  the vendor refused the key (another provider may serve)
        ├── ProviderRateLimited the vendor's rate limit or quota; `retry_after` seconds
        ├── ProviderTimeout     no answer in time
        ├── ProviderUnavailable the vendor is down (5xx) or unreachable
        ├── ProviderBadRequest  the vendor rejected the request itself (no other provider will help)
        ├── ContentRefused      the vendor's safety system refused the prompt (never retried elsewhere)
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
    """A provider failed.

    `retryable`: the same provider may succeed if asked again (after `retry_after` seconds).
    `fallback`: another provider able to serve the request may succeed (defaults to `retryable`).
    `status` is the vendor's HTTP status when there was one. Messages never hold keys.
    """

    code = "provider_error"
    default_retryable = False
    default_fallback: bool | None = None

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        fallback: bool | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = self.default_retryable if retryable is None else retryable
        if fallback is None:
            fallback = self.default_fallback if self.default_fallback is not None else self.retryable
        self.fallback = fallback
        self.status = status
        self.retry_after = retry_after


class ProviderAuthFailed(ProviderError):
    code = "provider_auth_failed"
    default_retryable = False
    default_fallback = True


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    default_retryable = True


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    default_retryable = True


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    default_retryable = True


class ProviderBadRequest(ProviderError):
    code = "provider_bad_request"
    default_retryable = False
    default_fallback = False


class ContentRefused(ProviderError):
    code = "content_refused"
    default_retryable = False
    default_fallback = False


class ModelUnavailable(ProviderError):
    code = "model_unavailable"
    default_retryable = False
    default_fallback = True
