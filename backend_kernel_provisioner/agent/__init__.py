"""The agent client: the runner's operations and result shape over ``jupyter_client``.

``AgentKernel.start("c")`` starts ``backend-c`` through ``AsyncKernelManager``
and our provisioner; ``execute()`` returns the runner's result dicts
(``runId``, ``status``, ``exitCode``, ``options``, ``console``).
"""

from backend_kernel_provisioner.agent.kernel import AgentError, AgentKernel

__all__ = ["AgentError", "AgentKernel"]
