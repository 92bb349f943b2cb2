"""gunicorn settings for Fengqiao (``gunicorn -c deploy/gunicorn.conf.py wsgi:app``).

Everything else is configured by environment (see docs/production.md); these settings only shape the
processes. Read by gunicorn, not imported by the app.
"""

import multiprocessing
import os

#: nginx on the same host proxies to this address; never expose gunicorn directly
bind = os.environ.get('FENGQIAO_BIND', '127.0.0.1:8000')
#: worker processes: cores + 1 by default; each holds its own database pool (5 + 10 connections). With PostgreSQL
#: on the same host a request spends its time on this machine's CPU, in Python or in PostgreSQL: more processes
#: and threads than that only share the cores worse. Measured on 2 cores, 10 API clients: 3 × 1 thread 82
#: completions/s (22 ms of CPU each), 5 × 4 threads 62/s (30 ms); see docs/production.md.
workers = int(os.environ.get('WEB_CONCURRENCY', multiprocessing.cpu_count() + 1))
#: threads per worker: more where requests wait on a remote database (each thread's request holds the
#: process's interpreter lock while it runs Python, so on a busy local machine one is best)
worker_class = 'gthread'
threads = int(os.environ.get('FENGQIAO_THREADS', 1))
#: not preloaded: each worker opens its own database connections after the fork
preload_app = False
#: a request running longer than this is killed (uploads are capped at FENGQIAO_ATTACHMENT_MAX_BYTES)
timeout = 60
#: on SIGTERM (systemctl stop/reload) workers finish their requests for up to this long, then exit
graceful_timeout = 30
keepalive = 5
#: recycle workers now and then, staggered, so that no slow leak grows for weeks. Not often: a new worker
#: builds the app, parses the BPMN specs and fills its caches again (2,000 requests, the old figure, recycled
#: every worker about once a minute under load and cost a fifth of the server's CPU)
max_requests = int(os.environ.get('FENGQIAO_MAX_REQUESTS', 100_000))
max_requests_jitter = max_requests // 10
#: trust X-Forwarded-* only from the local nginx (the app's FENGQIAO_PROXY_FIX applies them)
forwarded_allow_ips = '127.0.0.1'
#: the app logs one line per request with its request id (FENGQIAO_LOG_FORMAT=json); gunicorn's own
#: access log would only repeat it
accesslog = None
errorlog = '-'
loglevel = 'info'
#: the name ps and top show
proc_name = 'fengqiao-web'


def post_worker_init(worker):
    """Keep what the app allocated at start-up out of the collector's full passes: it lives as long as the worker,
    and walking it took 98 ms each time, about every 20 to-do pages (3 ms once frozen). And collect less often
    (web.core.collector)."""
    from web.core.collector import settle_collector

    settle_collector()
