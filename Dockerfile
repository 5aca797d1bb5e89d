# One image for every app process: web (gunicorn), worker and beat (Celery).
# docker-compose.yml picks the process per service through `command:`.
FROM python:3.11-slim

# PYTHONPATH=/app: the settings derive BASE_DIR (templates/, static/, staticfiles/) from
# the location of earlywarning/settings.py, so every process must import the source tree
# in /app, not the copy that `pip install .` puts in site-packages.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONPATH=/app

# An unprivileged user that owns nothing it does not need to write.
RUN groupadd --system app \
 && useradd --system --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies and packages first, from pyproject.toml, so this layer is reused as long
# as neither the metadata nor the Python packages change. README.md* (a glob) because
# pyproject names it as the readme but the build must not break if it is absent.
COPY pyproject.toml README.md* ./
COPY earlywarning ./earlywarning
COPY countries ./countries
COPY indicators ./indicators
COPY alerts ./alerts
RUN pip install --no-cache-dir . \
 && rm -rf build ./*.egg-info

# Everything else the processes need at run time (manage.py, templates/, static/ ...);
# .dockerignore keeps local state such as .venv, .env and db.sqlite3 out.
COPY . .

# Static files are collected once, into the image. The settings refuse to load without
# SECRET_KEY, so this one step gets a throw-away value that is not stored in any ENV
# and never reaches a running container; the real key comes from .env at run time.
ARG COLLECTSTATIC_SECRET_KEY=build-time-dummy-used-only-by-collectstatic
RUN SECRET_KEY="$COLLECTSTATIC_SECRET_KEY" python manage.py collectstatic --noinput

USER app

EXPOSE 8000

# No HEALTHCHECK here: the image also runs the Celery worker and beat, which serve no
# HTTP; docker-compose.yml defines a fitting health check per service.
CMD ["gunicorn", "earlywarning.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2"]
