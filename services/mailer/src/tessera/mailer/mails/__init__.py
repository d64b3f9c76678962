"""The emails of the suite, one module per producing service (``auth``, ``applets``, ...).

Each module holds the mailer's trimmed models of that service's events and the
:class:`~tessera.mailer.catalogue.Email` declarations built on them; every ``Email`` at a
module's top level is picked up by :func:`tessera.mailer.catalogue.emails`. Adding a module
here (and its templates) is all it takes for a new service's emails.
"""
