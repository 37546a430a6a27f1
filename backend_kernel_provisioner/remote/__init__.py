"""Provisioners for kernels on other hosts: gateway_provisioners' engines driving our kernel-side launcher.

:mod:`.provisioner` composes our behaviour (settings, services, events, restart
of the kernel child only) with any of gateway_provisioners'
``RemoteProvisionerBase`` subclasses; :mod:`.distributed` is the SSH-hosts one.
"""
