"""Superset configuration for the lakehouse stack, read by both launchers (SUPERSET_CONFIG_PATH).

Everything per install comes from the environment: the launcher (native) or compose sets it.
Nothing here needs Redis or Celery: caches are in-process or off, queries run synchronously.
"""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]  # signs sessions, encrypts stored DB passwords
# native: SQLite in the state dir; compose: the Postgres service
SQLALCHEMY_DATABASE_URI = os.environ["SUPERSET_DATABASE_URI"]

# no Redis: chart data is not cached (dashboards are live), UI state is kept in process
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
THUMBNAIL_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
RATELIMIT_STORAGE_URI = "memory://"

# served on loopback (native) or behind compose's network; no HTTPS redirects or HSTS here
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
WTF_CSRF_ENABLED = True
FEATURE_FLAGS: dict[str, bool] = {}
