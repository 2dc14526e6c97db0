"""``cluster.runner``: what every component needs to run as a process or a Ray actor, below the components.

- ``process``: child processes bound to their parent's life (PR_SET_PDEATHSIG), start counting
  across actor restarts, freezing the startup heap out of the garbage collector's reach.
- ``component``: command-line flags for reaching the API server and for leader election, and
  ``ComponentRunner``, the body of the scheduler's and the controller manager's actors.

It imports the client library and the ground floor only, never a component.
"""
