"""A kernel's death, told through jupyter_server's event logger where the server has one.

Why: the server's own events (``kernel_actions``) say "restart" and nothing
more; an operator's event sink (or a server extension listening to it) should
learn that a kernel was killed for memory, and by how much it was over. The
kernel manager of jupyter_server carries ``event_logger`` (jupyter_events);
plain jupyter_client managers have none, and then nothing is emitted.
"""

from __future__ import annotations

import logging
from typing import Any

SCHEMA_ID = "https://events.jupyter.org/backend_kernel_provisioner/kernel_death/v1"
SCHEMA: dict[str, Any] = {
    "$id": SCHEMA_ID,
    "version": "1",
    "title": "A backend kernel died by itself",
    "personal-data": True,
    "description": "A kernel ended without being asked to (out of memory, a crash); the server restarts it.",
    "type": "object",
    "required": ["kernel_id", "reason", "msg"],
    "properties": {
        "kernel_id": {"type": "string", "description": "The kernel's id."},
        "reason": {"enum": ["oom", "died"], "description": "oom: the OOM killer ended it; died: anything else."},
        "msg": {"type": "string", "description": "What the user is told on the kernel's next first cell."},
        "memory_limit": {"type": ["integer", "null"], "description": "Bytes, when the kernel had a limit."},
        "memory_peak": {"type": ["integer", "null"], "description": "Bytes at the peak of the launch."},
    },
}


def emit_kernel_death(manager: Any, data: dict[str, Any], log: logging.Logger) -> bool:
    """Emit ``data`` under :data:`SCHEMA_ID` on ``manager.event_logger``; False when there is none."""
    logger = getattr(manager, "event_logger", None)
    if logger is None or not hasattr(logger, "emit"):
        return False
    try:
        if SCHEMA_ID not in getattr(logger.schemas, "schema_ids", []):
            logger.register_event_schema(SCHEMA)
        logger.emit(schema_id=SCHEMA_ID, data=data)
    except Exception as exc:  # an event sink's failure must not stop a restart
        log.warning("kernel death not emitted to the server's event logger: %s", exc)
        return False
    return True
