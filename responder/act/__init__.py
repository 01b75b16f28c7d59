"""Acting on alerts: plans rendered from runbooks, and the machinery that executes them.

``plan`` is pure (runbook + alert -> concrete actions); ``argo`` is the only module that
talks to a cluster; ``gate`` decides whether a due attempt may run now (pure), with
``breaker`` and ``ratelimit``; ``scheduler`` runs due attempts through it, ``attempts``
carries out its verdicts, ``transitions`` runs ``on_open``/``on_close`` once per breaker
transition, ``escalation`` pages once per alert and resolves the page; ``context`` is what
an attempt carries in the journal.
"""
