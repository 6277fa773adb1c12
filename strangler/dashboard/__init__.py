"""The migration dashboard: routes, live split, errors, CDC and history on one page.

A small Starlette app served by `strangler dashboard` next to the proxy. It reads every
proxy replica's /metrics, the route store and CDC status; it changes routes only through
strangler.control, like the CLI. See docs/dashboard.md.
"""

from strangler.dashboard.app import DashboardConfig, create_app

__all__ = ["DashboardConfig", "create_app"]
