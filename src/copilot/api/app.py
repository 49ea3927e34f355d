"""The REST application on :8580: routes under /api/v1, docs at /docs and /redoc."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin

from copilot import __version__
from copilot.api.analytics import AnalyticsController
from copilot.api.auth import AuthController, principal_dependency
from copilot.api.edge import EdgeMiddleware
from copilot.api.errors import exception_handlers
from copilot.api.incidents import IncidentsController
from copilot.api.investigations import ChangesController, ChangeWebhookController, InvestigationsController
from copilot.api.monitoring import MonitoringController
from copilot.api.projects import ProjectsController
from copilot.api.security import SecurityHeaders
from copilot.api.throttle import FixedWindowCounter, LoginThrottle
from copilot.api.webhooks import WebhooksController
from copilot.bootstrap import Container
from copilot.ops.metrics import Metrics
from copilot.ops.routes import ops_routes

__all__ = ["create_api_app"]

MAX_BODY_BYTES = 1024 * 1024


def create_api_app(container: Container, metrics: Metrics | None = None,
                   nats_connected: Callable[[], bool] | None = None, **litestar_options: Any) -> Litestar:
    settings = container.settings
    throttle = LoginThrottle(per_email=settings.login_attempts_per_window,
                             per_address=settings.login_attempts_per_window * 5)
    budget = FixedWindowCounter(settings.rate_limit_per_minute, 60)
    api = Router(
        path="/api/v1",
        route_handlers=[AuthController, ProjectsController, IncidentsController, InvestigationsController,
                        MonitoringController, ChangesController, AnalyticsController],
        dependencies={"principal": principal_dependency()},
    )
    # Webhooks authenticate with their integration's token, not a user session.
    webhooks = Router(path="/api/v1", route_handlers=[WebhooksController, ChangeWebhookController])
    metrics = metrics or Metrics()
    container.store.on_append(lambda _position: metrics.events_appended.inc())
    container.store.timer = metrics.append_seconds.observe
    return Litestar(
        route_handlers=[api, webhooks, *ops_routes(container, metrics, nats_connected)],
        dependencies={
            "container": Provide(lambda: container, use_cache=True, sync_to_thread=False),
            "login_throttle": Provide(lambda: throttle, use_cache=True, sync_to_thread=False),
        },
        exception_handlers=exception_handlers,
        before_send=[SecurityHeaders(hsts=settings.cookie_secure)],  # every answer, matched route or not
        middleware=[DefineMiddleware(EdgeMiddleware, metrics=metrics, counter=budget,  # type: ignore[arg-type]
                                     tokens=container.tokens)],
        openapi_config=OpenAPIConfig(
            title="SRE Copilot",
            version=__version__,
            path="/",
            render_plugins=[SwaggerRenderPlugin(path="/docs"), RedocRenderPlugin(path="/redoc")],
        ),
        on_shutdown=[container.db.aclose],  # this loop's async read connections
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,  # logging is configured once, by the CLI
        cors_config=CORSConfig(allow_origins=[], allow_credentials=True),
        **litestar_options,
    )
