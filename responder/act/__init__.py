"""Acting on alerts: plans rendered from runbooks, and the machinery that executes them.

``plan`` is pure (runbook + alert -> concrete actions); ``argo`` is the only module that
talks to a cluster; ``breaker``, ``budget`` and ``ratelimit`` decide whether an action may
run now.
"""
