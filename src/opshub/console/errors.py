"""What the console's pages raise instead of the API's JSON errors."""

from __future__ import annotations


class SignInRequired(Exception):
    """No live session: the browser goes to the sign-in page."""


class CsrfRefused(Exception):
    """A form without its session's CSRF token: 403, nothing changed."""
