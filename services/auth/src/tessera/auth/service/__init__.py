"""Auth's use cases: one function, one transaction; each commits its own unit of work.

Routes (``tessera.auth.api``) and commands (``tessera.auth.admin``) translate their input
into calls of these, and never touch SQL themselves:

* :mod:`.context`: what the use cases share besides the unit of work (``AuthContext``) and
  who is calling from where (``ClientInfo``);
* :mod:`.accounts`: registration, the caller's account, email verification, recovery,
  password change, login links, profile and deletion;
* :mod:`.tokens`: logging in, sessions and tokens (opening, rotating, listing, revoking),
  and the first signing key;
* :mod:`.organisations`: organisations and memberships;
* :mod:`.apikeys`: personal API keys.
"""
