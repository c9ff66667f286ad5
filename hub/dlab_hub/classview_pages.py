"""The class page (/hub/classview) and its API (/hub/api/dlab/classview): the rows of the class
view (dlab_hub.classview), for holders of its scope alone (the organizer and the instructors group;
a student, by cookie or token, gets 403). The page stops a server through the hub's own API (with
the viewer's own rights: the organizer may, an instructor may not); the organizer sets the class
message from it."""
import json

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from tornado import web

from dlab_hub import classview
from dlab_hub.classview import CLASSVIEW_SCOPE
from dlab_hub.state import MAX_MESSAGE_CHARS, write_class_message

FORBIDDEN = "The class page is for the organizer and the instructors group."
MESSAGE_SCOPE = "admin:users"  # the organizer holds it (ORGANIZER_SCOPES in dlab_hub.config), instructors do not


def the_view(handler):
    """The hub's collector, for a caller who may see it."""
    if CLASSVIEW_SCOPE not in handler.expanded_scopes:
        raise web.HTTPError(403, FORBIDDEN)
    if classview.VIEW is None:
        raise web.HTTPError(404, "The class page is off on this class server (DLAB_CLASS_VIEW_EVERY=0).")
    return classview.VIEW


class ClassViewPage(BaseHandler):
    @web.authenticated
    async def get(self):
        view = the_view(self)
        html = await self.render_template("classview.html", every=view.every,
                                          can_stop="delete:servers" in self.expanded_scopes,
                                          can_message=MESSAGE_SCOPE in self.expanded_scopes)
        self.set_header("Cache-Control", "no-store")
        self.finish(html)


class ClassViewAPI(APIHandler):
    @web.authenticated
    def get(self):
        view = the_view(self)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(view.snapshot()))


class ClassMessageAPI(APIHandler):
    """POST {"message": "..."}: the class message every hub page shows (as make message sets it); "" takes it away."""

    @web.authenticated
    def post(self):
        the_view(self)
        # The organizer's alone (make message's): the login page outsiders see shows it too.
        if MESSAGE_SCOPE not in self.expanded_scopes:
            raise web.HTTPError(403, "Only the organizer sets the class message.")
        body = self.get_json_body()
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS:
            raise web.HTTPError(400, f'{{"message": text of at most {MAX_MESSAGE_CHARS} characters}}')
        write_class_message(message)
        self.log.info("dlab: %s set the class message: %r", self.current_user.name, message[:200])
        self.finish(json.dumps({"message": message}))
