"""The ``responder`` command: serve | check | test | explain | replay | analyze | train.

Every subcommand reads ``-c/--config`` (default ``./responder.yaml``), so ``analyze`` and
``explain`` answer with the patterns, runbooks and templates the service would use.
Configuration errors print as ``path:line: message`` and exit 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from responder import __version__, ctl
from responder.config.main import LEVELS
from responder.errors import ConfigErrors
from responder.load import Runtime, load_analyzer, load_runtime, template_problems
from responder.logs import setup_logging
from responder.model import DecodeError, decode_group

DESCRIPTION = ("alert-responder: takes Alertmanager's and Grafana's webhooks, analyses the "
               "failure, acts on Argo Workflows under retry budgets and circuit breakers, "
               "and notifies people.")


def _errors(exc: ConfigErrors) -> int:
    for error in exc.errors:
        print(error, file=sys.stderr)
    print(f"{len(exc.errors)} error(s)", file=sys.stderr)
    return 1


def _runtime(args: argparse.Namespace, *, check_templates: bool = False) -> Runtime:
    return load_runtime(Path(args.config), check_templates=check_templates)


async def _freeze_startup_objects(app: object) -> None:
    """Keep what lives as long as the process out of the cyclic GC's full collections.

    Modules, the Kubernetes client, compiled patterns, runbooks and templates are tens of
    thousands of objects; a full collection scanning them all stalls the event loop for
    tens of milliseconds, which webhook requests wait out. Frozen, they are skipped.
    """
    gc.collect()
    gc.freeze()


def cmd_serve(args: argparse.Namespace) -> int:
    from responder.app import create_app
    from responder.journal import JournalOpenError, JournalUnavailable, JournalVersionError
    from responder.server import listen, run

    setup_logging("text", args.log_level or "info")
    try:
        runtime = _runtime(args)
    except ConfigErrors as exc:
        return _errors(exc)
    config = runtime.config
    setup_logging(config.log_format, args.log_level or config.log_level)
    for problem in template_problems(runtime):
        logging.getLogger("responder.load").warning("%s", problem)
    try:   # before anything starts: a port in use is one line, and nothing ran
        sockets = listen(config.host, config.port)
    except OSError as exc:
        print(f"error: cannot listen on {config.host}:{config.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    app = create_app(runtime, handle_signals=True)
    app.on_startup.append(_freeze_startup_objects)
    log = logging.getLogger("responder")
    log.info("alert-responder %s listening on %s:%d (%d runbooks, %d patterns, channels: %s)",
             __version__, config.host, config.port, len(runtime.runbooks),
             len(runtime.patterns), ", ".join(sorted(config.channels)),
             extra={"version": __version__, "listen": f"{config.host}:{config.port}",
                    "config": str(config.path)})
    try:
        run(app, sockets=sockets, limits=config.http, shutdown_timeout=10.0)
    except (JournalVersionError, JournalUnavailable, JournalOpenError) as exc:   # no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log.info("alert-responder stopped")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        runtime = load_runtime(Path(args.config), check_templates=True, strict_model=True)
    except ConfigErrors as exc:
        return _errors(exc)
    from responder.crosscheck import crosscheck

    problems = crosscheck(runtime)
    if problems:
        return _errors(ConfigErrors(problems))
    if runtime.config.postgres is not None and not _check_postgres(args, runtime):
        return 1
    auth = runtime.config.auth
    if auth.enabled and not auth.operators:
        print(f"{args.config}: warning: auth has no operators: the webhook credential also "
              "serves the console, ctl, pause, approvals, breakers and reload; give people "
              "their own credentials with auth.operators", file=sys.stderr)
    print(f"{args.config}: OK: {len(runtime.runbooks)} runbooks, {len(runtime.patterns)} "
          f"patterns, {len(runtime.templates.names())} templates, "
          f"{len(runtime.config.channels)} channels")
    return 0


def _check_postgres(args: argparse.Namespace, runtime: Runtime) -> bool:
    """Whether the configured database answers; says so either way (never its password)."""
    import asyncio

    from responder.journal import JournalUnavailable
    from responder.journal.postgres import probe

    assert runtime.config.postgres is not None
    try:
        print(f"{args.config}: state: {asyncio.run(probe(runtime.config.postgres.dsn))}")
    except JournalUnavailable as exc:
        print(f"{args.config}: state.postgres: {exc}", file=sys.stderr)
        return False
    return True


def cmd_test(args: argparse.Namespace) -> int:
    from responder.runbook_tests import run_test_files

    ok, report = run_test_files([Path(p) for p in args.files], default_config=Path(args.config))
    print(report)
    return 0 if ok else 1


def cmd_explain(args: argparse.Namespace) -> int:
    from responder.explain import explain

    try:
        runtime = _runtime(args)
    except ConfigErrors as exc:
        return _errors(exc)
    results, failed = [], False
    for name in args.payloads:
        try:
            body = Path(name).read_bytes() if name != "-" else sys.stdin.buffer.read()
            group, rejected = decode_group(body)
        except OSError as exc:
            print(f"{name}: {exc.strerror}", file=sys.stderr)
            failed = True
            continue
        except DecodeError as exc:
            print(f"{name}: {exc.path}: {exc.message}", file=sys.stderr)
            failed = True
            continue
        result = explain(runtime, group)
        result["rejected"] = [{"index": r.index, "path": r.path, "error": r.error}
                              for r in rejected]
        results.append((name, result))
    if args.json:
        # One payload: its explanation; several: a list of them, each naming its file.
        out: Any = results[0][1] if len(args.payloads) == 1 and results else [
            {"payload": name, **result} for name, result in results]
        print(json.dumps(out, indent=2, default=str))
    else:
        for name, result in results:
            if len(args.payloads) > 1:
                print(f"== {name}")
            print(_explain_text(result, runtime) + ("\n" if len(args.payloads) > 1 else ""))
    return 1 if failed else 0


def _explain_text(result: dict[str, Any], runtime: Runtime) -> str:
    out = []
    config = runtime.config
    if config.dry_run:
        mode = "dry_run: true, actions are recorded, never executed"
    elif config.argo is not None and config.argo.server:
        mode = f"actions go to the Argo Server {config.argo.server}"
    else:
        mode = "actions go to the Kubernetes API if one is reachable, else run dry"
    out.append(f"group {result['group']['groupKey'] or '(no groupKey)'} "
               f"[{result['group']['status']}]; {mode}")
    out.append("(explain touches nothing: no journal, no cluster, no delivery)")
    for r in result["rejected"]:
        out.append(f"  rejected alert {r['index']}: {r['path']}: {r['error']}")
    for alert in result["alerts"]:
        a = alert["analysis"]
        out.append(f"\nalert {alert['index']}: {alert['alertname']} [{alert['status']}] "
                   + " ".join(f"{k}={v}" for k, v in alert["labels"].items() if k != "alertname"))
        out.append(f"  analysis: {a['category']} (pattern {a['pattern'] or '-'}, confidence "
                   f"{a['confidence']:.2f}, retryable {str(a['retryable']).lower()})")
        for rec in a.get("recommendations", []):
            out.append(f"    - {rec}")
        if not alert["runbooks"]:
            out.append("  runbooks: none matched")
        for rb in alert["runbooks"]:
            out.append(f"  runbook {rb['runbook']}")
            if "approval" in rb:
                asked = rb["approval"]
                out.append(f"    asks a person first ({', '.join(asked['notify']) or 'the console'});"
                           f" no decision in {asked['timeout_seconds']:g}s: {asked['on_timeout']}")
            for w in rb["would"]:
                params = ", ".join(f"{k}={v}" for k, v in w["params"].items())
                line = f"    would {w['would']} {w['kind']}({params})"
                if w["would"] == "schedule":
                    line += f": up to {w['attempts']} attempts, waits " + ", ".join(
                        f"{d:g}s" for d in w["delays_seconds"])
                if w.get("reason"):
                    line += f": {w['reason']}"
                out.append(line)
            if rb.get("breaker_key"):
                out.append(f"    breaker {rb['breaker_key']}")
            for n in rb.get("notify", []):
                out.append(f"    notify {n['channel'] if isinstance(n, dict) else n}")
            for n in rb.get("on_exhausted", []):
                out.append(f"    on exhausted notify {n['channel'] if isinstance(n, dict) else n}")
        for err in alert["errors"]:
            out.append(f"  error in runbook {err['runbook']}: {err['error']}")
    shown = [("notification", n) for n in result["notifications"]] + [
        ("escalation", n) for n in result.get("escalations", [])]
    for kind, n in shown:
        out.append(f"\n{kind} via {n['channel']} ({n.get('type', '?')}) "
                   f"from runbook {n['runbook']} for alert(s) "
                   + ", ".join(str(i) for i in n.get("alerts", [])) + ":")
        if "error" in n:
            out.append(f"  error: {n['error']}")
        else:
            out.append("  " + json.dumps(n["body"], indent=2, default=str).replace("\n", "\n  "))
    return "\n".join(out)


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio
    import time

    from responder.config.durations import parse_duration
    from responder.journal import JournalUnavailable, JournalVersionError
    from responder.replay import decided_since, format_report, replay

    try:
        runtime = _runtime(args)
    except ConfigErrors as exc:
        return _errors(exc)
    try:
        since = time.time() - parse_duration(args.since)
    except ValueError as exc:
        print(f"--since: {exc}", file=sys.stderr)
        return 1
    try:
        journaled = asyncio.run(decided_since(runtime, args.state, since))
    except (JournalUnavailable, JournalVersionError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(format_report(replay(runtime, journaled.deliveries, journaled.corrections), since))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from responder.training import corrections_of

    try:
        config, analyzer = load_analyzer(Path(args.config))
    except ConfigErrors as exc:
        return _errors(exc)
    if args.text is not None:
        text = args.text
    else:  # any bytes: the analysis reads what it can, never fails on encoding
        text = sys.stdin.buffer.read().decode("utf-8", "replace")
    analysis = analyzer.analyze(text, corrections=corrections_of(config))
    if args.json:
        print(json.dumps(analysis.to_dict()))
        return 0
    print(f"category:   {analysis.category}")
    print(f"pattern:    {analysis.pattern or '-'}")
    print(f"confidence: {analysis.confidence:.2f}")
    print(f"retryable:  {str(analysis.retryable).lower()}")
    print(f"source:     {analysis.source}")
    if analysis.matched:
        print(f"matched:    {analysis.matched}")
    if analysis.terms:
        print(f"terms:      {', '.join(analysis.terms)}")
    for rec in analysis.recommendations:
        print(f"  - {rec}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from responder.training import corpus_dir, train_model

    try:
        config, analyzer = load_analyzer(Path(args.config))
    except ConfigErrors as exc:
        return _errors(exc)
    output = Path(args.output) if args.output else \
        (config.analysis.model_path or config.base_dir / "responder-model.npz")
    corpus = corpus_dir(config, args.corpus)
    if not (corpus / "train").is_dir():
        print(f"{corpus}: no corpus here (expected train/ and holdout/ with YAML files)",
              file=sys.stderr)
        return 1
    try:
        report = train_model(config, analyzer, output, corpus)
    except (OSError, ValueError, KeyError) as exc:
        print(f"train failed: {exc}", file=sys.stderr)
        return 1
    before, after = report.holdout_before, report.holdout_after
    print(f"corpus:       {report.corpus} ({report.train_cases} training messages)")
    print(f"corrections:  {report.corrections} from the journal ({config.display(config.state_path)})")
    print(f"holdout:      {before.total} messages")
    print(f"  before:     {before.accuracy:.1%} right, retryable wrong on {before.retry_error:.1%}"
          " (the configured analysis)")
    print(f"  after:      {after.accuracy:.1%} right, retryable wrong on {after.retry_error:.1%}"
          " (patterns + the new model)")
    if report.corrections_after is not None:
        print(f"corrections:  {report.corrections_after.accuracy:.1%} classified as corrected "
              "by the new model alone")
    print(f"wrote:        {output} in {report.seconds:.1f}s")
    if config.analysis.model_path != output.resolve():
        print(f"use it:       set `analysis: {{model: {output}}}` in {args.config} and reload")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="responder", description=DESCRIPTION,
        epilog="Every subcommand takes -c/--config; 'responder COMMAND --help' for its flags.")
    parser.add_argument("--version", action="version", version=f"alert-responder {__version__}",
                        help="print the version and exit")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default="responder.yaml",
                        help="configuration file (default: ./responder.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands", help="one of:")
    p = sub.add_parser("serve", parents=[common], help="run the service")
    p.add_argument("--log-level", choices=LEVELS,
                   help="log level; overrides log.level of the config (default: info)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("check", parents=[common],
                       help="validate config, runbooks, patterns and templates")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("test", parents=[common], help="run runbook unit tests")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="runbook test files (YAML: alert payloads and what must happen)")
    p.set_defaults(func=cmd_test)
    p = sub.add_parser("explain", parents=[common],
                       help="dry run webhook payloads; touches nothing")
    p.add_argument("payloads", nargs="+", metavar="PAYLOAD.json",
                   help="webhook payload files (Alertmanager's or Grafana's), - for stdin")
    p.add_argument("--json", action="store_true",
                   help="print JSON (several payloads: a list, each with its file name)")
    p.set_defaults(func=cmd_explain)
    p = sub.add_parser("replay", parents=[common],
                       help="decide the journaled alerts of a period again; touches nothing")
    p.add_argument("--state", metavar="DB-or-DSN",
                   help="SQLite journal file or postgresql:// DSN (default: the config's state)")
    p.add_argument("--since", default="24h", help="how far back (default: 24h)")
    p.set_defaults(func=cmd_replay)
    p = sub.add_parser("analyze", parents=[common], help="classify failure text")
    p.add_argument("text", nargs="?", help="failure text (default: read stdin)")
    p.add_argument("--json", action="store_true",
                   help="print the verdict as JSON: category, pattern, confidence, ...")
    p.set_defaults(func=cmd_analyze)
    p = sub.add_parser("train", parents=[common],
                       help="rebuild the analysis model from the corpus and the corrections")
    p.add_argument("-o", "--output", metavar="MODEL",
                   help="model file to write (default: analysis.model's path, else "
                        "responder-model.npz beside the config)")
    p.add_argument("--corpus", metavar="DIR", help="labelled corpus (default: rules/corpus)")
    p.set_defaults(func=cmd_train)
    ctl.add_parser(sub, [common])
    for action in sub._choices_actions:   # `responder X --help` opens with what X does
        command = sub.choices[action.dest]
        command.description = command.description or action.help
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as a pipe's writer does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
