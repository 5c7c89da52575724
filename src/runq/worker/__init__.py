"""The worker side of runq: what runs in a ``runq worker`` process and its task process.

``loop``            ``Worker``: register, serve (claim -> run -> finish-and-claim-next), leave
``tasks``           ``TaskHandler``: claim, run and store the task in hand
``messages``        ``MessageHandler``: the worker's side of ``ctl.messages``
``control``         ``ControlThread``: heartbeat, cancel/kill requests, lost workers, retries due
``retrying``        ``BackendRetry``: backend calls retried through an outage; stop requests
``process_runner``  ``ProcessRunner``: runs each task in a child process it can stop
``frames``          the typed frames of the pipe between the worker and that child
``child``           the child process itself (``python -m runq.worker.child``)
``runner``          ``Runner``: a claimed task's payload -> its outcome (in the child)
``concurrent``      ``ConcurrentServe``: the serve loop of a worker with concurrency > 1
``concurrent_child`` that worker's child: tasks side by side on an event loop
``hooks``           ``Hooks``: the worker's hooks, loaded and called in the child
``group``           ``WorkerGroup``: ``runq worker -n N``, a supervisor of N workers

What the controller side shares with the worker lives outside this package, so that the
controller imports no worker internals: ``runq.config`` (``WorkerConfig``) and ``runq.names``
(worker names).
"""
