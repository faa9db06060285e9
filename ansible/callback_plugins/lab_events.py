# lab's stdout callback for ansible-playbook: one JSON object per line for each
# host's task results and, at the end, each host's counts, so that lab keeps
# every host's output and result apart as it does for its own services
# (src/deploy/playbook.ts reads it). Ansible's warnings and errors stay on stderr.
from __future__ import annotations

import json
import sys

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: lab_events
type: stdout
short_description: one JSON line per host event, read by lab
description:
  - Task results per host, then each host's counts, as JSON lines on stdout.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "lab_events"

    def __init__(self):
        super().__init__()
        self._task = ""

    def _emit(self, event):
        sys.stdout.write(json.dumps(event, default=str) + "\n")
        sys.stdout.flush()

    def _result(self, kind, result):
        r = result._result
        event = {"event": kind, "host": result._host.get_name(), "task": self._task, "changed": bool(r.get("changed"))}
        for key in ("msg", "stdout", "stderr", "rc"):
            if r.get(key) not in (None, ""):
                event[key] = r[key]
        # A loop's items: the messages of the ones that failed.
        failed_items = [i.get("msg") for i in r.get("results", []) if isinstance(i, dict) and i.get("failed")]
        if failed_items:
            event["items"] = [m for m in failed_items if m]
        # TaskExecutor's word for a task over its timeout (task_timeout).
        if kind == "failed" and "in the expected time frame" in str(r.get("msg", "")):
            event["timedout"] = True
        self._emit(event)

    def v2_playbook_on_play_start(self, play):
        self._emit({"event": "play", "name": play.get_name()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task = task.get_name()

    def v2_playbook_on_handler_task_start(self, task):
        self._task = task.get_name()

    def v2_runner_on_ok(self, result):
        self._result("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_playbook_on_no_hosts_matched(self):
        self._emit({"event": "no-hosts"})

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed.keys()):
            self._emit({"event": "stats", "host": host, "counts": stats.summarize(host)})
