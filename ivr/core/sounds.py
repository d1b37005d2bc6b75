"""The prompt files Asterisk's own configuration names (``sound:<subdir>/<name>``).

The server renders them with its TTS and publishes them under these fixed names at every start
(``ivr.app.parts``), so the dialplan and the queues can play them even while the server is down;
``asterisk.runner`` writes the same names into the configuration. The words are in
``dialog.prompts.P`` under the prompt ids used as keys here.
"""

from __future__ import annotations

QUEUE_CALLBACK = "queue-callback"  # queues.conf periodic-announce: 1 books a callback

# prompt id (dialog.prompts.P) -> file name, for the dialplan's failsafe (server down)
DIALPLAN_PROMPTS: dict[str, str] = {"failsafe_hold": "failsafe-hold",
                                    "failsafe_sorry": "failsafe-sorry"}
