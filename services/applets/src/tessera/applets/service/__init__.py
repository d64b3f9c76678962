"""The applets service's use cases: one async function = one transaction.

``content`` (create, replace, patch, delete, duplicate, publish, list, read), ``versions``,
``people`` (roles, invitations, ownership transfers), ``projection`` (auth's events), and
``access``, which every use case asks who the caller is to the applet.
"""
