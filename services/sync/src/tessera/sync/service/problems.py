"""What MISP's event, attribute, tag and sighting routes refuse, in MISP's own words.

MISP answers a refusal one of two ways, and clients read both:

* an exception (``NotFoundException``, ``ForbiddenException``, ``MethodNotAllowedException``):
  ``{"name": <message>, "message": <message>, "url": <path>}`` with 404, 403 or 405. These are
  :class:`~tessera.common.problems.Problem` subclasses here; the app's handler adds ``name``,
  ``message`` and ``url`` to the problem document.
* ``RestResponseComponent::saveFailResponse``: 403 with ``{"saved": false, "name": "Could not
  <action> <Model>", "message": ..., "url": "/<controller>/<action>[/<id>]", "errors": ...}``,
  where ``errors`` is whatever MISP's validation gave (a message, or ``{field: [messages]}``).
  That is :class:`SaveFailed`, rendered by the routes' ``MispRoute``.
"""

from __future__ import annotations

from typing import Any

from tessera.common.problems import Problem

__all__ = [
    "ACL_DENIED",
    "AttributeNotFound",
    "Blocked",
    "EventExists",
    "EventNotFound",
    "Forbidden",
    "InvalidJson",
    "NotAllowed",
    "NotAuthorised",
    "NotPermitted",
    "ObjectNotFound",
    "ReferenceNotFound",
    "SaveFailed",
    "TargetNotFound",
    "TemplateNotFound",
]

ACL_DENIED = "You do not have permission to use this functionality."
"""``ACLComponent``'s answer to a role without the permission a route needs"""


class NotPermitted(Problem):
    """The role may not use the route (read only adding, a user publishing...)."""

    status = 403
    code = "misp_permission_denied"
    title = ACL_DENIED


class EventNotFound(Problem):
    """No such event, or not one the caller may see (MISP answers both alike)."""

    status = 404
    code = "misp_invalid_event"
    title = "Invalid event"


class AttributeNotFound(Problem):
    status = 404
    code = "misp_invalid_attribute"
    title = "Invalid attribute"


class ObjectNotFound(Problem):
    """No such object, or not one the caller may see (or, adding a reference, modify)."""

    status = 404
    code = "misp_invalid_object"
    title = "Invalid object."


class ReferenceNotFound(Problem):
    status = 404
    code = "misp_invalid_object_reference"
    title = "Invalid object reference."


class TemplateNotFound(Problem):
    """``objects/add/{event}/{template uuid}`` of a template this instance does not know."""

    status = 404
    code = "misp_invalid_template"
    title = "Invalid template."


class TargetNotFound(Problem):
    """``tags/attachTagToObject``: the uuid is no event nor attribute the caller sees."""

    status = 404
    code = "misp_invalid_target"
    title = "Invalid Target."


class EventExists(Problem):
    """``events/add`` of a uuid known here; ``Location`` names the event to edit instead."""

    status = 404
    code = "misp_event_exists"
    title = (
        "Event already exists, if you would like to edit it, use the url in the location header."
    )


class Blocked(Problem):
    """``events/add`` of an event a blocklist refuses."""

    status = 403
    code = "misp_blocked"
    title = "Event blocked by event blocklist."


class NotAllowed(Problem):
    """MISP's ``MethodNotAllowedException``: 405, whatever the method was."""

    status = 405
    code = "misp_not_allowed"
    title = "You do not have the permission to do that."


class Forbidden(Problem):
    """MISP's ``ForbiddenException``: 403, in the words of the rule that refused."""

    status = 403
    code = "misp_forbidden"
    title = "You do not have permission to do that."


class NotAuthorised(Problem):
    """``events/edit`` of an event the caller's organisation did not create."""

    status = 403
    code = "misp_not_authorised"
    title = "You are not authorised to do that."


class InvalidJson(Problem):
    status = 400
    code = "misp_invalid_json"
    title = "The request body must be JSON."


class SaveFailed(Problem):
    """``saveFailResponse``: 403, ``name`` and ``message`` "Could not <action> <Model>",
    ``url`` ``/<controller>/<action>[/<id>]``, ``errors`` MISP's validation errors as they
    are (a message, or ``{field: [messages]}``)."""

    status = 403
    code = "misp_save_failed"
    title = "Could not save"

    def __init__(
        self, *, controller: str, action: str, model: str, errors: Any, ident: str | None = None
    ) -> None:
        super().__init__(title=f"Could not {action} {model}")
        self.url = f"/{controller}/{action}" + (f"/{ident}" if ident else "")
        self.misp_errors = errors
        self.ident = ident

    def misp_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "saved": False,
            "name": self.title,
            "message": self.title,
            "url": self.url,
            "errors": self.misp_errors,
        }
        if self.ident:
            body["id"] = self.ident
        return body
