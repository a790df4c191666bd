"""The web pages: an overview of milestones and each milestone's page, with sign-in through GitHub
and sign-off on the page. Templates (Jinja2, autoescaped) in `templates/`, the style sheet in
`static/`; no script runs on any page."""

from integrations.pages.views import SECURITY_HEADERS, Pages

__all__ = ["SECURITY_HEADERS", "Pages"]
