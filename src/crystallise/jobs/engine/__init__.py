"""The job engine: runs stored jobs item by item, checkpointed, whatever their kind.

``runner`` (lifecycle, heartbeat, cancel), ``items`` (``map_items``: bounded concurrency over
a job's pending items), ``writer`` (batched result writes), ``dispatch`` (in-process and queue
dispatchers), ``queue`` (procrastinate), ``process`` (the server's child job process),
``failures`` (when a job fails instead of an item), ``spec`` (the base of every stored job
spec), ``retirement`` (a stored job's models checked again when it runs).
"""
