# One image for every Python part of the stack: the monolith (gunicorn), its Celery worker and
# beat, and later the extracted services, relay, consumers and proxy (each a different command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY analyzer ./analyzer
COPY strangler ./strangler
COPY monolith ./monolith
COPY extracted ./extracted
# strangler_analyzer is the analyzer's import name (a symbolic link in the repository too);
# the monolith and services run from /app, the [demo] extra has what they need.
RUN ln -s analyzer strangler_analyzer \
    && pip install '.[demo]' \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /var/lib/shop/beat && chown -R app /var/lib/shop

USER app
ENV MONOLITH_VAR_DIR=/var/lib/shop
EXPOSE 8000
CMD ["gunicorn", "monolith.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
