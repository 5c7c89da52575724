"""The Redis (and Valkey) backend: each state transition is one Lua script.

- Keys: ``keys.py`` holds the whole vocabulary. Every key is ``runq:{<namespace>}:…`` (one
  Cluster slot per namespace); task data lives in namespace-level hashes keyed by task id, so
  every key a script touches is passed through ``KEYS``.
- Scripts: ``lua/*.lua`` (package data), each joined after the libraries it needs and
  registered once per backend object by the one script runner (``scripts.py``); every script's
  header documents its KEYS and ARGV. The server's ``TIME`` stamps every time.
- Queues a script was not given are asked for with a ``NEEDQ`` answer before any write; the
  call is then repeated with them (``core.py``).
- Waking: enqueue/release/requeue push tokens to a queue's wake list; a claim that finds all
  its queues empty deletes their wake lists in the same script, so a worker that then
  ``BLPOP``s them misses no push. Finished ids are published on ``runq:{ns}:done``
  (``listen.py``).
- Many ids cost a bounded number of round trips: ``HMGET`` in chunks, in one pipeline. A batch
  of more than ``staging.ENQUEUE_CHUNK`` tasks is staged chunk by chunk, invisibly, then
  committed by one script (``staging.py``): all or none at any size.
- Connections and repeats: ``connection.py`` makes the client (timeouts, keepalive, no hidden
  retries); ``errors.py`` is the one place that turns redis-py's errors into runq's and
  decides what is repeated: a connection error is met once more, on a fresh connection, by the
  verbs that only read (``read_retried``); transitions are never sent twice, since the first
  may have been applied before its answer was lost: every script (``EVALSHA``), and the
  ``_r`` calls that write non-idempotently (``store_collect`` and ``store_destroy``, whose
  ``MULTI`` reads and deletes the orphans set; ``config_save`` without overwrite, ``HSETNX``).
  Those surface a lost connection as ``BackendUnavailable`` and the caller decides. A blocking
  wait (``BLPOP``) whose connection breaks returns early, as any wait may. Only a server that
  cannot serve *for now* is unavailable.

Modules, each named after what it holds:

================= ==================================================================
``backend``       ``RedisBackend``: the parts assembled; open (version), close, destroy
``core``          the state and plumbing every part shares: script calls, ``HMGET``
``connection``    the redis-py client of a URL (timeouts, credentials, no retries)
``errors``        the one translation of redis-py errors; which calls are repeated
``scripts``       every Lua script (``lua/``), loaded one way, run by one runner
``keys``          the key vocabulary;  ``replies``: decoding what Redis answers
``tasks``         enqueue, cancel, delete, claim, finish, requeue, progress, wait for work
``staging``       an enqueue too large for one script call
``inspection``    reads of tasks: status, records, payloads, results, listings, waits
``listen``        the pub/sub ear ``wait_change`` uses
``workers``       registration, the worker log, the list of workers
``liveness``      heartbeats, lost workers, release, cancel and kill requests
``retries``       delayed retries, manual retry (MOVED), the moves resolve/chain follow
``messaging``     messages, pause/resume, forgetting workers, configs, the environment
``store``         the object store and the namespace settings;  ``blobs``: its values as
                  script arguments
``namespaces``    which namespaces a server (or every master of a cluster) holds
``cluster``       on a Redis Cluster: scripts on the slot's master, redirections followed
================= ==================================================================

(Duplicate policies are decided inside the task scripts: the ``dedup_*`` helpers of
``lua/_lib.lua`` and ``lua/_enqueue_lib.lua``.)
"""

from runq.backends.redis.backend import RedisBackend
from runq.backends.redis.namespaces import namespaces

__all__ = ["RedisBackend", "namespaces"]
