"""The raykube scheduler (kube-scheduler in small).

- ``predicates``: pure filters, scores, taints/tolerations, node affinity,
  resource arithmetic and the FailedScheduling message;
- ``cache``: node capacity counting bound and *assumed* pods;
- ``queue``: activeQ / backoffQ / unschedulable pool;
- ``scheduler``: ``Scheduler`` (informers, the scheduling loop, bindings, events);
- ``python -m cluster.scheduler``: the process (with Lease leader election).

The Ray actor is ``cluster.actors.scheduler.SchedulerActor``.
"""
